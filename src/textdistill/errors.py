"""Errors meant for people: each says what was wrong, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class TextdistillError(Exception):
    """An error the user can act on; the CLI prints it without a traceback."""


class DataError(TextdistillError):
    """Bad input data, located by file, row and column."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        self.hint = hint
        super().__init__(self._format())

    def __str__(self) -> str:
        # From the fields, not from args: Ray Data appends its retry advice to the args of an
        # error raised in its tasks, and a bad row read there must read as it does locally.
        return self._format()

    def _format(self) -> str:
        where = [self.file] if self.file else []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = ", ".join(where) + ": " + self.problem if where else self.problem
        if self.hint:
            text += f"\n  What to do: {self.hint}"
        return text


REBUILD_HINT = "copy the model directory again from where it came from, or train (or compress) it again."


class ModelError(TextdistillError):
    """A saved model that cannot be loaded as written: the file, what is wrong, what to do."""

    def __init__(self, problem: str, *, file: str | Path, hint: str | None = REBUILD_HINT) -> None:
        self.problem = problem
        self.file = str(file)
        self.hint = hint
        super().__init__(self._format())

    def __str__(self) -> str:
        return self._format()

    def _format(self) -> str:
        text = f"{self.file}: {self.problem}"
        if self.hint:
            text += f"\n  What to do: {self.hint}"
        return text
