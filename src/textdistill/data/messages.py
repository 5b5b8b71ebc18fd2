"""Messages from CSV, JSONL or Parquet, validated row by row.

Every problem is reported with its file, row and column and what to do. With
``skip_bad_rows`` a row-level problem skips that row instead and is recorded in
``MessageSet.skipped``, so the count reaches the output and the report: nothing is dropped
silently. Annotated and unannotated messages are told apart explicitly (a separate file, or
an ``annotated`` flag column), never guessed from an empty label cell: in multi-label data an
empty label set is a valid annotation ("nothing applies").
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from textdistill.data.email import clean_email
from textdistill.data.labels import DEFAULT_HIERARCHY_SEP, normalise
from textdistill.errors import DataError

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


@dataclass(frozen=True)
class DataSpec:
    """How to read messages from a table.

    ``text_columns`` are joined with a blank line (e.g. ``("subject", "body")``). The label
    mode follows the columns present: ``labels_column`` (multi-label, joined by
    ``label_sep``) or ``label_column`` (single-label); set ``multi_label`` to choose when a
    file has both.
    """

    text_columns: tuple[str, ...] = ("text",)
    id_column: str | None = None
    label_column: str = "label"
    labels_column: str = "labels"
    multi_label: bool | None = None
    label_sep: str = ";"
    hierarchy_sep: str = DEFAULT_HIERARCHY_SEP
    annotated_column: str | None = None
    clean_email: bool = False
    skip_bad_rows: bool = False
    encoding: str = "utf-8"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSpec:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown data options: {', '.join(sorted(unknown))}")
        if isinstance(data.get("text_columns"), str):
            data = {**data, "text_columns": (data["text_columns"],)}
        elif "text_columns" in data:
            data = {**data, "text_columns": tuple(data["text_columns"])}
        return cls(**data)


@dataclass(frozen=True)
class SkippedRow:
    """A row left out under ``skip_bad_rows``, and why."""

    file: str
    row: int
    column: str | None
    problem: str


@dataclass
class MessageSet:
    """Messages of one file: texts, ids, and label sets (``None`` for unannotated messages).

    Single-label messages have one-label sets. ``rows`` are the 1-based data row numbers in
    the source file (the header is not counted), for error messages later on.
    """

    texts: list[str]
    ids: list[str]
    label_sets: list[tuple[str, ...] | None]
    rows: list[int]
    source: str
    multi_label: bool | None
    hierarchy_sep: str = DEFAULT_HIERARCHY_SEP
    label_column: str | None = None
    skipped: list[SkippedRow] = field(default_factory=list)
    columns: tuple[str, ...] = ()  # every column of the source file

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> MessageSet:
        return replace(
            self,
            texts=[self.texts[i] for i in indices],
            ids=[self.ids[i] for i in indices],
            label_sets=[self.label_sets[i] for i in indices],
            rows=[self.rows[i] for i in indices],
        )

    def annotated(self) -> MessageSet:
        return self.subset([i for i, labels in enumerate(self.label_sets) if labels is not None])

    def unannotated(self) -> MessageSet:
        return replace(self.subset([i for i, labels in enumerate(self.label_sets) if labels is None]), multi_label=self.multi_label)

    @property
    def labels(self) -> list[tuple[str, ...]]:
        """Label sets of an all-annotated set (call :meth:`annotated` first otherwise)."""
        if any(labels is None for labels in self.label_sets):
            raise ValueError(f"{self.source} holds unannotated messages; use .annotated() first")
        return self.label_sets  # type: ignore[return-value]

    def drop_rows(self, positions: set[int], problems: dict[int, SkippedRow]) -> MessageSet:
        """A copy without the rows at ``positions``, recording why each was skipped."""
        keep = [i for i in range(len(self)) if i not in positions]
        kept = self.subset(keep)
        kept.skipped = self.skipped + [problems[i] for i in sorted(positions)]
        return kept


def load_messages(path: str | Path, spec: DataSpec | None = None, *, annotated: bool = True) -> MessageSet:
    """Read and validate messages.

    ``annotated=False`` reads an unannotated file: label columns are ignored. Otherwise every
    row is annotated unless ``spec.annotated_column`` marks it as not.
    """
    spec = spec or DataSpec()
    path = Path(path)
    columns, records = _open_table(path, spec.encoding)
    _require_columns(path, columns, spec.text_columns, "text", "--text-column")
    if spec.id_column:
        _require_columns(path, columns, (spec.id_column,), "id", "--id-column")
    if spec.annotated_column:
        _require_columns(path, columns, (spec.annotated_column,), "annotated-flag", "--annotated-column")
    label_column, multi_label = (None, spec.multi_label)
    if annotated:
        label_column, multi_label = _label_column(path, columns, spec)

    result = MessageSet([], [], [], [], str(path), multi_label, spec.hierarchy_sep, label_column, columns=tuple(columns))
    first_row_of_id: dict[str, int] = {}
    for row, record in records:
        try:
            text = _text(path, row, record, spec)
            message_id = _message_id(path, row, record, spec, first_row_of_id)
            labels = None
            if label_column and (not spec.annotated_column or _flag(path, row, record, spec.annotated_column)):
                labels = _labels(path, row, record[label_column], label_column, bool(multi_label), spec)
        except DataError as error:
            if not spec.skip_bad_rows:
                raise
            result.skipped.append(SkippedRow(str(path), row, error.column, error.problem))
            continue
        first_row_of_id[message_id] = row
        result.texts.append(clean_email(text) if spec.clean_email else text)
        result.ids.append(message_id)
        result.label_sets.append(labels)
        result.rows.append(row)
    if not result.texts:
        raise DataError(
            f"no usable messages ({len(result.skipped)} bad rows skipped)",
            file=path,
            hint="check the file's contents; the first skipped row was: "
            + (f"row {result.skipped[0].row}: {result.skipped[0].problem}" if result.skipped else "none"),
        )
    return result


def read_columns(messages: MessageSet, names: Sequence[str], encoding: str = "utf-8") -> dict[str, list[str]] | None:
    """The text in columns ``names`` of each message's row in its source file, or None (without
    reading the file again) when the file lacks any of those columns."""
    if not set(names) <= set(messages.columns):
        return None
    path = Path(messages.source)
    wanted = set(messages.rows)
    found = {row: record for row, record in _open_table(path, encoding)[1] if row in wanted}
    return {name: [_cell_text(path, row, found[row], name) for row in messages.rows] for name in names}


def require_two_classes(messages: MessageSet) -> None:
    """A single-label classifier needs at least two distinct labels to learn from."""
    if messages.multi_label:
        return
    distinct = {labels[0] for labels in messages.label_sets if labels}
    if len(distinct) < 2:
        only = next(iter(distinct), None)
        raise DataError(
            f"every annotated message has the same label ({only!r}): a classifier needs at least two classes",
            file=messages.source,
            column=messages.label_column,
            hint="add annotated messages of other labels, or check that the right column is used as the label",
        )


# -- reading tables ----------------------------------------------------------------------------
def message_file_kind(path: Path) -> str:
    """The format of a messages file (``csv``, ``jsonl`` or ``parquet``); an error when ``path``
    is missing, a directory, of another type, or empty."""
    if not path.exists():
        raise DataError("file not found", file=path, hint="check the path (it is relative to the current directory)")
    if path.is_dir():
        raise DataError("is a directory, not a file", file=path, hint="point to a .csv, .jsonl or .parquet file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"unsupported file type {path.suffix!r}",
            file=path,
            hint=f"save the messages as one of: {', '.join(sorted(SUFFIXES))}",
        )
    if path.stat().st_size == 0:
        raise DataError("the file is empty", file=path, hint="write a header row and at least one message")
    return kind


def _open_table(path: Path, encoding: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]]]:
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[message_file_kind(path)]
    columns, records = reader(path, encoding)
    if not records:
        raise DataError("the file has no messages, only a header", file=path, hint="add at least one message row")
    return columns, iter(records)


def _decode(path: Path, encoding: str) -> str:
    # Undecodable bytes become lone surrogates, so each one can be reported at its row and column.
    if encoding.lower().replace("-", "") == "utf8":
        encoding = "utf-8-sig"
    return path.read_bytes().decode(encoding, errors="surrogateescape")


def _read_csv(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(_decode(path, encoding), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError("the file is empty", file=path, hint="write a header row and at least one message") from None
    except csv.Error as exc:
        raise DataError(f"cannot read the header: {exc}", file=path, row=0) from None
    header = [name.strip() for name in header]
    records = []
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"malformed CSV: {exc}", file=path, row=row + 1, hint="check the quoting around this row") from None
        if not cells:
            continue
        row += 1
        if len(cells) > len(header):
            records.append((row, _BadRecord(f"has {len(cells)} cells but the header has {len(header)} columns",
                                            "quote cells that contain the delimiter")))
            continue
        records.append((row, dict(zip(header, cells + [None] * (len(header) - len(cells))))))
    return header, records


def _read_jsonl(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    columns: dict[str, None] = {}
    records = []
    row = 0
    for line in _decode(path, encoding).split("\n"):
        if not line.strip():
            continue
        row += 1
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append((row, _BadRecord(f"is not valid JSON ({exc.msg})", "write one JSON object per line")))
            continue
        if not isinstance(record, dict):
            records.append((row, _BadRecord("is not a JSON object", 'write one object per line, e.g. {"text": "...", "label": "..."}')))
            continue
        columns.update(dict.fromkeys(record))
        records.append((row, record))
    return list(columns), records


def _read_parquet(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataError(f"cannot read as Parquet: {exc}", file=path, hint="check that the file is a complete Parquet file") from None
    return table.column_names, list(enumerate(table.to_pylist(), start=1))


class _BadRecord(dict):
    """A row that could not be parsed at all; validating it raises its problem."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__()
        self.problem, self.hint = problem, hint


# -- validating cells --------------------------------------------------------------------------
def _require_columns(path: Path, columns: Sequence[str], wanted: Sequence[str], role: str, option: str) -> None:
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise DataError(
            f"no {role} column {', '.join(repr(m) for m in missing)} (the columns are: {', '.join(columns) or 'none'})",
            file=path,
            column=missing[0],
            hint=f"rename the column, or name it with {option}",
        )


def _label_column(path: Path, columns: Sequence[str], spec: DataSpec) -> tuple[str, bool]:
    has_multi, has_single = spec.labels_column in columns, spec.label_column in columns
    if spec.multi_label is True or (spec.multi_label is None and has_multi and not has_single):
        _require_columns(path, columns, (spec.labels_column,), "multi-label", "--labels-column")
        return spec.labels_column, True
    if spec.multi_label is False or (spec.multi_label is None and has_single and not has_multi):
        _require_columns(path, columns, (spec.label_column,), "label", "--label-column")
        return spec.label_column, False
    if has_multi and has_single:
        raise DataError(
            f"both a {spec.label_column!r} and a {spec.labels_column!r} column: single- or multi-label?",
            file=path,
            hint="choose with --multi-label or --single-label",
        )
    raise DataError(
        f"no label column: expected {spec.label_column!r} (single-label) or {spec.labels_column!r} "
        f"(multi-label); the columns are: {', '.join(columns)}",
        file=path,
        column=spec.label_column,
        hint="name the label column with --label-column / --labels-column, or pass the file as unannotated messages",
    )


def _check_decoded(path: Path, row: int, column: str, value: str) -> None:
    for position, char in enumerate(value):
        if "\udc80" <= char <= "\udcff":
            raise DataError(
                f"contains bytes that are not valid text in this encoding (byte 0x{ord(char) - 0xDC00:02x} at character {position})",
                file=path,
                row=row,
                column=column,
                hint="re-save the file as UTF-8, or pass --encoding with the file's real encoding (e.g. cp1252)",
            )


def _cell_text(path: Path, row: int, record: dict[str, Any], column: str) -> str:
    if isinstance(record, _BadRecord):
        raise DataError(record.problem, file=path, row=row, hint=record.hint)
    value = record.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(
            f"holds a {type(value).__name__} ({str(value)[:40]!r}), not text",
            file=path,
            row=row,
            column=column,
            hint="store text cells as strings",
        )
    _check_decoded(path, row, column, value)
    return value


def _text(path: Path, row: int, record: dict[str, Any], spec: DataSpec) -> str:
    parts = [_cell_text(path, row, record, column).strip() for column in spec.text_columns]
    text = "\n\n".join(part for part in parts if part)
    if not text:
        raise DataError(
            "the message text is empty",
            file=path,
            row=row,
            column=" + ".join(spec.text_columns),
            hint="fill in the text, remove the row, or pass --skip-bad-rows to skip such rows",
        )
    return text


def _message_id(path: Path, row: int, record: dict[str, Any], spec: DataSpec, seen: dict[str, int]) -> str:
    if not spec.id_column:
        return f"{path.stem}:{row}"
    value = record.get(spec.id_column)
    message_id = str(value).strip() if value is not None and not isinstance(value, str) else _cell_text(path, row, record, spec.id_column).strip()
    if not message_id:
        raise DataError("the id is empty", file=path, row=row, column=spec.id_column, hint="give every message a unique id")
    if message_id in seen:
        raise DataError(
            f"duplicate id {message_id!r} (first used in row {seen[message_id]})",
            file=path,
            row=row,
            column=spec.id_column,
            hint="ids must be unique: fix the duplicate, or pass --skip-bad-rows to keep only the first",
        )
    return message_id


def _flag(path: Path, row: int, record: dict[str, Any], column: str) -> bool:
    value = record.get(column)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataError(
        f"annotated flag {value!r} is neither true nor false",
        file=path,
        row=row,
        column=column,
        hint="write true/false (or 1/0, yes/no)",
    )


def _labels(path: Path, row: int, value: Any, column: str, multi_label: bool, spec: DataSpec) -> tuple[str, ...]:
    if isinstance(value, list) and multi_label:
        raw = value
    elif isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
        raise DataError(
            f"holds a {type(value).__name__} ({str(value)[:40]!r}), not a label",
            file=path,
            row=row,
            column=column,
            hint="write labels as text" + (f", several joined by {spec.label_sep!r}" if multi_label else ""),
        )
    else:
        text = "" if value is None else str(value)
        _check_decoded(path, row, column, text)
        raw = text.split(spec.label_sep) if multi_label else [text]
    labels = []
    for label in raw:
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise DataError(f"holds a non-text label {label!r}", file=path, row=row, column=column, hint="write labels as text")
        label = normalise(str(label), spec.hierarchy_sep)
        if label:
            labels.append(label)
    if not multi_label and not labels:
        raise DataError(
            "the label is empty",
            file=path,
            row=row,
            column=column,
            hint="label every annotated message; keep unannotated messages in a separate file (--unannotated) "
            "or mark them with an annotated flag column (--annotated-column)",
        )
    return tuple(sorted(set(labels)))
