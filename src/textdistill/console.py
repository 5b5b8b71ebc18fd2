"""The consoles every command prints to: notes and errors on stderr, results on stdout.

They print strings as they are. Paths, column names, ids, labels and error messages come from
the user's data and may hold ``[/b]`` or ``:name:``, which rich would read as markup (and fail
on, or swallow) or as emoji codes; so styles are given with ``style=`` or as
:class:`rich.text.Text`, never as markup inside a string.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text


class _Console(Console):
    """Lines of text are soft-wrapped: a long path stays one line (the terminal folds it), whole
    for copying. Boxes (panels, tables, rules) are laid out to the console's width instead: soft
    wrapping would cut their text at the right edge."""

    def print(self, *objects: Any, soft_wrap: bool | None = None, **kwargs: Any) -> None:
        if soft_wrap is None:
            soft_wrap = all(isinstance(item, str | Text) for item in objects)
        super().print(*objects, soft_wrap=soft_wrap, **kwargs)


def stderr_console() -> Console:
    """A stderr console with markup and emoji codes off."""
    return _Console(stderr=True, markup=False, emoji=False)


def stdout_console() -> Console:
    """A stdout console, like :func:`stderr_console`, for a command's results."""
    return _Console(markup=False, emoji=False)
