"""Messages of many files, read a file at a time and cut into chunks: ``textdistill predict``'s input.

:func:`input_files` expands what ``--data`` names (files, directories, glob patterns) into
:class:`InputFile` entries, in the order given, with the size and modification time that tell
a rerun whether a file changed. A file is the unit of reading: :meth:`ChunkReader.read` loads
one whole file with :func:`~textdistill.data.messages.load_messages` (so a bad row is named by
file, row and column, or skipped and counted) and cuts its messages into chunks of
``chunk_size``. Both engines call it, the local one in its own process and the Ray one in its
read tasks, so no process ever holds more than one file's messages.

Default ids (no id column) are ``stem:row``, as for every command; with several input files
they start with the file's index (``2/inbox:17``) so that they stay unique across files. Ids
from an id column are checked for uniqueness within each file only; ``file`` and ``row``
locate every message.
"""

from __future__ import annotations

import glob
import os
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from textdistill.data.messages import SUFFIXES, DataSpec, load_messages, message_file_kind
from textdistill.errors import DataError

_GLOB_CHARACTERS = set("*?[")


@dataclass(frozen=True)
class InputFile:
    """An input file: its path as given (or as found in a directory or by a pattern), the
    absolute path that reading uses (Ray workers run in another directory), and the size and
    modification time that identify its contents."""

    path: str
    absolute: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FileToRead:
    """Input file ``index`` and the chunks of it already written (they are not read again)."""

    index: int
    file: InputFile
    done: frozenset[int] = frozenset()


@dataclass
class Chunk:
    """Chunk ``index`` of input file ``file_index``: its messages, the 1-based data rows they
    came from, the bad rows skipped among them (``skipped``) and whether it is the file's last."""

    file_index: int
    index: int
    file: str
    ids: list[str]
    texts: list[str]
    rows: list[int]
    skipped: int
    last: bool

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class ChunkReader:
    """How to read input files: the columns and checks (``spec``), messages per chunk, and
    whether default ids start with the file's index (several input files)."""

    spec: DataSpec
    chunk_size: int
    prefix_ids: bool

    def read(self, todo: FileToRead) -> Iterator[Chunk]:
        """The chunks of one file, but those in ``todo.done``. Chunk j holds the file's messages
        [j * chunk_size, (j + 1) * chunk_size) and counts the bad rows skipped after chunk j - 1's
        last row, up to its own (the last chunk: up to the end of the file)."""
        messages = load_messages(todo.file.absolute, self.spec, annotated=False)
        ids = messages.ids
        if self.prefix_ids and not self.spec.id_column:
            ids = [f"{todo.index}/{message_id}" for message_id in ids]
        skipped = sorted(row.row for row in messages.skipped)
        starts = range(0, len(messages), self.chunk_size)
        for j, start in enumerate(starts):
            if j in todo.done:
                continue
            end = min(start + self.chunk_size, len(messages))
            last = j == len(starts) - 1
            after = messages.rows[start - 1] if start else 0
            up_to = len(skipped) if last else bisect_right(skipped, messages.rows[end - 1])
            yield Chunk(
                todo.index,
                j,
                todo.file.path,
                ids[start:end],
                messages.texts[start:end],
                messages.rows[start:end],
                up_to - bisect_right(skipped, after),
                last,
            )


def input_files(sources: Sequence[str | Path]) -> list[InputFile]:
    """The message files that ``sources`` name, in order: a file as it is, a directory as its
    supported files sorted by name, a glob pattern as its matching supported files, sorted."""
    if not sources:
        raise DataError("no input named", hint="name at least one messages file, directory or glob pattern (--data)")
    paths = [path for source in sources for path in _expand(str(source))]
    seen: dict[str, str] = {}
    for path in paths:
        absolute = os.path.abspath(path)
        if absolute in seen:
            raise DataError(
                f"is named twice (as {seen[absolute]} and as {path})",
                file=absolute,
                hint="name each file once; check overlapping directories and patterns in --data",
            )
        seen[absolute] = str(path)
    return [_input_file(path) for path in paths]


def _expand(source: str) -> list[Path]:
    path = Path(source)
    kinds = ", ".join(sorted(SUFFIXES))
    if path.is_dir():
        found = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES), key=lambda p: p.name)
        if not found:
            raise DataError(f"holds no message files ({kinds})", file=path, hint="point --data to the files, or to the directory that holds them")
        return found
    if not path.exists() and _GLOB_CHARACTERS & set(source):
        found = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file() and Path(p).suffix.lower() in SUFFIXES)
        if not found:
            raise DataError(f"the pattern matches no message files ({kinds})", file=source, hint="check the pattern (it is relative to the current directory)")
        return found
    return [path]


def _input_file(path: Path) -> InputFile:
    message_file_kind(path)  # missing, unsupported or empty: said now, before any reading starts
    stat = path.stat()
    return InputFile(str(path), os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
