"""Messages from CSV, JSONL or Parquet, validated row by row.

Every problem is reported with its file, row and column and what to do. With
``skip_bad_rows`` a row-level problem skips that row instead and is recorded in
``MessageSet.skipped``, so the count reaches the output and the report: nothing is dropped
silently. A CSV quote that does not close where it should is reported at the row that opens
it; every further line it swallowed is a skipped row of its own. What is read as asked but
deserves a look (short rows, labels that differ only by case, cut texts) is in
``MessageSet.warnings``. Annotated and unannotated messages are told apart explicitly (a
separate file, or an ``annotated`` flag column), never guessed from an empty label cell: in
multi-label data an empty label set is a valid annotation ("nothing applies").
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.data.email import clean_email
from textdistill.data.labels import DEFAULT_HIERARCHY_SEP, normalise
from textdistill.errors import DataError

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}
LONG_TEXT = ("refuse", "cut")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Python's csv refuses fields over 131,072 characters; real email bodies are longer, and the
# whole file is in memory anyway. --max-text-chars is the limit people set.
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
# Byte order marks, longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class DataSpec:
    """How to read messages from a table.

    ``text_columns`` are joined with a blank line (e.g. ``("subject", "body")``). The label
    mode follows the columns present: ``labels_column`` (multi-label, joined by
    ``label_sep``) or ``label_column`` (single-label); set ``multi_label`` to choose when a
    file has both. ``fold_case`` reads labels that differ only by case or inner whitespace
    (``Billing``, ``billing``, ``BILLING``) as their most frequent spelling. A text longer than
    ``max_text_chars`` is refused (a bad row) or, with ``long_text="cut"``, cut to that length.
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
    fold_case: bool = False
    max_text_chars: int = 1_000_000
    long_text: str = "refuse"

    def __post_init__(self) -> None:
        if self.long_text not in LONG_TEXT:
            raise DataError(f"long_text (--long-text) is {self.long_text!r}", hint=f"choose one of: {', '.join(LONG_TEXT)}")
        if self.max_text_chars < 1:
            raise DataError(f"max_text_chars (--max-text-chars) is {self.max_text_chars}", hint="give a positive number of characters")

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
    the source file (the header is not counted), for error messages later on. ``warnings``
    are things read as asked but worth a look (short rows, labels that differ only by case).
    ``cleaned_chars`` holds each text's length in characters before and after email clean-up
    (before any cut to ``max_text_chars``), or None when clean-up was off.
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
    warnings: list[str] = field(default_factory=list)
    cleaned_chars: list[tuple[int, int]] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> MessageSet:
        return replace(
            self,
            texts=[self.texts[i] for i in indices],
            ids=[self.ids[i] for i in indices],
            label_sets=[self.label_sets[i] for i in indices],
            rows=[self.rows[i] for i in indices],
            cleaned_chars=None if self.cleaned_chars is None else [self.cleaned_chars[i] for i in indices],
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


def load_messages(path: str | Path, spec: DataSpec | None = None, *, annotated: bool = True, held_out: bool = False) -> MessageSet:
    """Read and validate messages.

    ``annotated=False`` reads an unannotated file: label columns are ignored. Otherwise every
    row is annotated unless ``spec.annotated_column`` marks it as not. ``held_out``: a
    validation or test file, which is annotated throughout when it has no annotated-flag column.
    """
    spec = spec or DataSpec()
    path = Path(path)
    columns, records, warnings = _open_table(path, spec.encoding)
    _require_columns(path, columns, spec.text_columns, "text", "--text-column")
    if spec.id_column:
        _require_columns(path, columns, (spec.id_column,), "id", "--id-column")
    if held_out and spec.annotated_column not in columns:
        spec = replace(spec, annotated_column=None)
    if spec.annotated_column:
        _require_columns(path, columns, (spec.annotated_column,), "annotated-flag", "--annotated-column")
    label_column, multi_label = (None, spec.multi_label)
    if annotated:
        label_column, multi_label = _label_column(path, columns, spec)

    result = MessageSet([], [], [], [], str(path), multi_label, spec.hierarchy_sep, label_column, columns=tuple(columns), warnings=warnings)
    cleaned_chars: list[tuple[int, int]] = []
    first_row_of_id: dict[str, int] = {}
    cut_rows: list[int] = []
    for row, record in records:
        try:
            text = _text(path, row, record, spec)
            if spec.clean_email:
                before = len(text)
                text = clean_email(text)
                lengths = (before, len(text))
            if len(text) > spec.max_text_chars:
                if spec.long_text == "refuse":
                    raise _too_long(path, row, len(text), spec)
                text = text[: spec.max_text_chars]
                cut_rows.append(row)
            message_id = _message_id(path, row, record, spec, first_row_of_id)
            labels = None
            if label_column and (not spec.annotated_column or _flag(path, row, record, spec.annotated_column)):
                labels = _labels(path, row, record, label_column, bool(multi_label), spec)
        except DataError as error:
            if not spec.skip_bad_rows:
                raise
            result.skipped.append(SkippedRow(str(path), row, error.column, error.problem))
            continue
        first_row_of_id[message_id] = row
        result.texts.append(text)
        result.ids.append(message_id)
        result.label_sets.append(labels)
        result.rows.append(row)
        if spec.clean_email:
            cleaned_chars.append(lengths)
    if spec.clean_email:
        result.cleaned_chars = cleaned_chars
    if not result.texts:
        raise DataError(
            f"no usable messages: all {len(result.skipped)} rows were skipped as bad, none is left",
            file=path,
            hint="check the file's contents; the first skipped row was: "
            + (f"row {result.skipped[0].row}: {result.skipped[0].problem}" if result.skipped else "none"),
        )
    if cut_rows:
        result.warnings.append(
            f"{len(cut_rows)} texts longer than {spec.max_text_chars:,} characters were cut to that length "
            f"(rows {_first_rows(cut_rows)})"
        )
    _fold_label_variants(result, spec.fold_case)
    return result


def text_cleaning(messages: MessageSet) -> dict[str, int | float] | None:
    """How much email clean-up removed from ``messages``: median and 95th percentile of the
    texts' characters before and after it; None when clean-up was off."""
    if not messages.cleaned_chars:
        return None
    before, after = np.array(messages.cleaned_chars).T
    before_p50, before_p95 = np.percentile(before, [50, 95])
    after_p50, after_p95 = np.percentile(after, [50, 95])
    return {
        "messages": len(messages.cleaned_chars),
        "chars_before_p50": float(before_p50),
        "chars_before_p95": float(before_p95),
        "chars_after_p50": float(after_p50),
        "chars_after_p95": float(after_p95),
    }


def describe_cleaning(cleaning: dict[str, int | float]) -> str:
    """One line for the console: ``clean-up: median 985 -> 554 characters, p95 4,210 -> 1,302``."""
    return (
        f"clean-up: median {cleaning['chars_before_p50']:,.0f} -> {cleaning['chars_after_p50']:,.0f} characters, "
        f"p95 {cleaning['chars_before_p95']:,.0f} -> {cleaning['chars_after_p95']:,.0f} "
        f"({cleaning['messages']:,} messages)"
    )


def read_columns(messages: MessageSet, names: Sequence[str], encoding: str = "utf-8") -> dict[str, list[str]] | None:
    """The text in columns ``names`` of each message's row in its source file, or None (without
    reading the file again) when the file lacks any of those columns."""
    if not set(names) <= set(messages.columns):
        return None
    path = Path(messages.source)
    wanted = set(messages.rows)
    found = {row: record for row, record in _open_table(path, encoding)[1] if row in wanted}
    return {name: [_cell_text(path, row, found[row], name) for row in messages.rows] for name in names}


def write_skipped_rows(skipped: Sequence[SkippedRow], path: str | Path) -> Path:
    """Write every skipped row (file, row, column, problem) to a CSV file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "row", "column", "problem"))
        writer.writerows((s.file, s.row, s.column or "", s.problem) for s in skipped)
    return path


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


def _open_table(path: Path, encoding: str) -> tuple[list[str], Iterator[tuple[int, dict[str, Any]]], list[str]]:
    """The file's columns, its numbered records and the warnings reading it gave."""
    reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[message_file_kind(path)]
    columns, records, warnings = reader(path, encoding)
    if not records:
        raise DataError("the file has no messages, only a header", file=path, hint="add at least one message row")
    return columns, iter(records), warnings


def _decode(path: Path, encoding: str) -> str:
    """The file's text. A byte order mark (UTF-8, -16, -32) says the encoding; without one,
    ``encoding`` does. Undecodable bytes become lone surrogates, so each one can be reported
    at its row and column."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise DataError(
            f"unknown encoding {encoding!r}",
            file=path,
            hint="pass --encoding with a Python codec name, e.g. utf-8, cp1252, latin-1 or utf-16",
        ) from None
    data = path.read_bytes()
    bom = next((codec for mark, codec in _BOMS if data.startswith(mark)), None)
    if bom is None and codecs.lookup(encoding).name == "utf-8":
        bom = "utf-8-sig"
    try:
        return data.decode(bom or encoding, errors="surrogateescape")
    except UnicodeDecodeError as exc:  # surrogateescape covers bytes 0x80-0xff only (e.g. not an odd byte of UTF-16)
        raise DataError(
            f"is not valid {bom or encoding} text (byte {exc.start}: {exc.reason})",
            file=path,
            hint="pass --encoding with the file's real encoding, or re-save the file as UTF-8",
        ) from None


def _check_header(path: Path, columns: Sequence[str]) -> None:
    """Refuse header names that cannot be told apart (a repeated name would silently read
    only one of its columns) or that are not text in the file's encoding."""
    for name in columns:
        if _SURROGATE.search(name) or "\x00" in name:
            raise DataError(
                f"the header {', '.join(repr(c) for c in columns)[:120]} is not text in this encoding",
                file=path,
                hint="pass --encoding with the file's real encoding (e.g. utf-16 for a file with NUL bytes "
                "between the letters, cp1252 for Windows exports), or re-save the file as UTF-8",
            )
    positions: dict[str, int] = {}
    for position, name in enumerate(columns, start=1):
        if not name:
            continue  # unnamed columns (a trailing delimiter) are never read
        if name in positions:
            raise DataError(
                f"the column name {name!r} appears twice in the header (columns {positions[name]} and {position})",
                file=path,
                column=name,
                hint="rename one of the two columns so that each name is used once",
            )
        positions[name] = position


def _read_csv(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]], list[str]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    lines = io.StringIO(_decode(path, encoding), newline="").readlines()
    # strict: a quote that closes in the middle of a cell is an error, not text glued on, so
    # an unclosed quote is found where it swallows the next row, not many rows later.
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError("the file is empty", file=path, hint="write a header row and at least one message") from None
    except csv.Error as exc:
        raise DataError(f"cannot read the header: {exc}", file=path, hint="check the quoting of the first line") from None
    header = [name.strip() for name in header]
    _check_header(path, header)
    records: list[tuple[int, dict[str, Any]]] = []
    short_rows: list[int] = []
    row = 0
    while True:
        start = reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row = _add_broken_quote(records, row, header, lines, start, reader.line_num, delimiter, str(exc))
            continue
        if not cells:
            continue
        row += 1
        if len(cells) > len(header):
            problem = f"has {len(cells)} cells but the header has {len(header)} columns"
            if reader.line_num - start > 1:
                problem += f" (it spans lines {start + 1}-{reader.line_num}: is a quote not closed?)"
            records.append((row, _BadRecord(problem, "quote cells that contain the delimiter")))
            row = _add_swallowed(records, row, lines, start + 1, reader.line_num, row)
            continue
        if len(cells) < len(header):
            short_rows.append(row)
        # a short row lacks the keys of its missing cells: empty if optional, an error if a label
        records.append((row, dict(zip(header, cells))))
    warnings = []
    if short_rows:
        warnings.append(
            f"{len(short_rows)} rows have fewer cells than the header's {len(header)} columns; their missing cells "
            f"are read as empty (rows {_first_rows(short_rows)})"
        )
    return header, records, warnings


def _add_broken_quote(
    records: list[tuple[int, dict[str, Any]]], row: int, header: Sequence[str], lines: Sequence[str], start: int, end: int, delimiter: str, error: str
) -> int:
    """Record a row whose quoting breaks (lines ``start + 1`` to ``end``, 1-based), and each
    further line the broken quote swallowed as a bad row of its own; the last row number."""
    opened = row + 1
    spans = end - start > 1
    if "unexpected end of data" in error:
        problem = f"a quote opens in this row (line {start + 1}) and never closes"
        if spans:
            problem += f": it swallows the rest of the file ({end - start - 1} more lines)"
    elif spans:
        problem = f"a quote opens in this row (line {start + 1}) and closes only in line {end}, followed by more text"
    else:
        problem = f"a quoted cell is followed by more text (line {start + 1}): {error}"
    column = _open_quote_column(lines[start], delimiter)
    name = header[column] if column is not None and column < len(header) else None
    hint = 'close the quote (a quote inside a quoted cell is written twice: ""), or pass --skip-bad-rows to leave these rows out'
    records.append((opened, _BadRecord(problem, hint, name)))
    return _add_swallowed(records, opened, lines, start + 1, end, opened)


def _add_swallowed(records: list[tuple[int, dict[str, Any]]], row: int, lines: Sequence[str], start: int, end: int, opened: int) -> int:
    """Each non-empty line of ``lines[start:end]`` as a bad row swallowed by row ``opened``."""
    for number in range(start, end):
        if lines[number].strip("\r\n"):
            row += 1
            records.append((row, _BadRecord(
                f"line {number + 1} is inside the quoted cell that row {opened} opens",
                f"fix the quoting of row {opened}; this line is read again then",
            )))
    return row


def _open_quote_column(line: str, delimiter: str) -> int | None:
    """The 0-based column of ``line`` whose quote is still open at the line's end, or whose
    quoted cell is followed by more text; None when neither."""
    column, at_start, quoted, index = 0, True, False, 0
    while index < len(line):
        char = line[index]
        if quoted:
            if char == '"':
                if line[index + 1 : index + 2] == '"':
                    index += 1
                else:
                    quoted = False
                    if line[index + 1 : index + 2] not in (delimiter, "", "\n", "\r"):
                        return column
        elif char == delimiter:
            column, at_start = column + 1, True
            index += 1
            continue
        elif char == '"' and at_start:
            quoted = True
        at_start = False
        index += 1
    return column if quoted else None


def _read_jsonl(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]], list[str]]:
    columns: dict[str, None] = {}
    records = []
    row = 0
    for line in _decode(path, encoding).split("\n"):
        if not line.strip():
            continue
        row += 1
        try:
            record = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            records.append((row, _BadRecord(f"is not valid JSON ({exc.msg})", "write one JSON object per line")))
            continue
        except _RepeatedKey as exc:
            records.append((row, _BadRecord(f"the key {exc.key!r} appears twice", "use each key once per object", exc.key)))
            continue
        if not isinstance(record, dict):
            records.append((row, _BadRecord("is not a JSON object", 'write one object per line, e.g. {"text": "...", "label": "..."}')))
            continue
        columns.update(dict.fromkeys(record))
        records.append((row, record))
    return list(columns), records, []


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated key (``json`` keeps the last one silently)."""
    record = dict(pairs)
    if len(record) < len(pairs):
        raise _RepeatedKey(next(key for key, _ in pairs if sum(k == key for k, _ in pairs) > 1))
    return record


def _read_parquet(path: Path, encoding: str) -> tuple[list[str], list[tuple[int, dict[str, Any]]], list[str]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
        rows = table.to_pylist()
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataError(f"cannot read as Parquet: {exc}", file=path, hint="check that the file is a complete Parquet file") from None
    _check_header(path, table.column_names)
    return table.column_names, list(enumerate(rows, start=1)), []


def _first_rows(rows: Sequence[int], shown: int = 5) -> str:
    """``3, 8, 9, 12, 20 and 4 more``."""
    text = ", ".join(str(row) for row in rows[:shown])
    return text + (f" and {len(rows) - shown} more" if len(rows) > shown else "")


class _BadRecord(dict):
    """A row that could not be parsed at all; validating it raises its problem."""

    def __init__(self, problem: str, hint: str, column: str | None = None) -> None:
        super().__init__()
        self.problem, self.hint, self.column = problem, hint, column


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
    found = _SURROGATE.search(value)
    if found is None:
        return
    char, position = found.group(), found.start()
    if "\udc80" <= char <= "\udcff":  # an undecodable byte, kept by surrogateescape
        problem = f"contains bytes that are not valid text in this encoding (byte 0x{ord(char) - 0xDC00:02x} at character {position})"
        hint = "re-save the file as UTF-8, or pass --encoding with the file's real encoding (e.g. cp1252)"
    else:  # e.g. a JSON escape "\ud83d" without its other half: no character, and not writable as UTF-8
        problem = f"contains a lone surrogate U+{ord(char):04X} at character {position}, which is not a character"
        hint = "write the character itself, or both halves of its surrogate pair"
    raise DataError(problem, file=path, row=row, column=column, hint=hint)


def _cell_text(path: Path, row: int, record: dict[str, Any], column: str) -> str:
    if isinstance(record, _BadRecord):
        raise DataError(record.problem, file=path, row=row, column=record.column, hint=record.hint)
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


def _too_long(path: Path, row: int, length: int, spec: DataSpec) -> DataError:
    return DataError(
        f"the text has {length:,} characters, more than the limit of {spec.max_text_chars:,}",
        file=path,
        row=row,
        column=" + ".join(spec.text_columns),
        hint="raise the limit with --max-text-chars, keep the first characters with --long-text cut, "
        "or pass --skip-bad-rows to leave such rows out",
    )


def _labels(path: Path, row: int, record: dict[str, Any], column: str, multi_label: bool, spec: DataSpec) -> tuple[str, ...]:
    if column not in record:
        # a JSON object without the key, or a CSV row that ends before the label column: an
        # empty label set would read as "nothing applies", so say it instead
        raise DataError(
            f"the row has no {column!r} {'cell' if path.suffix.lower() in ('.csv', '.tsv') else 'key'}",
            file=path,
            row=row,
            column=column,
            hint=f"give every annotated row a {column!r} value, or pass --skip-bad-rows to leave such rows out",
        )
    value = record[column]
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
        _check_decoded(path, row, column, str(label))
        _check_no_control(path, row, column, str(label))
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


def _check_no_control(path: Path, row: int, column: str, text: str) -> None:
    """Labels hold no control characters: a NUL would make another label, a line break most
    often means that a quote in the file is not closed."""
    for position, char in enumerate(text):
        if unicodedata.category(char) == "Cc":
            raise DataError(
                f"the label {text[:60]!r} contains the control character U+{ord(char):04X} at character {position}",
                file=path,
                row=row,
                column=column,
                hint="remove control characters (NUL, tab, line breaks) from labels; a line break in a label "
                "usually means a quote before it in the file is not closed",
            )


def label_variant_key(label: str) -> str:
    """What labels that differ only by case or inner whitespace have in common."""
    return " ".join(label.casefold().split())


def _fold_label_variants(messages: MessageSet, fold: bool) -> None:
    """Warn of labels that differ only by case or inner whitespace (``Billing`` / ``billing``),
    or with ``fold`` read each group as its most frequent spelling (ties: the first in sort order)."""
    counts = Counter(label for labels in messages.label_sets if labels for label in labels)
    groups: dict[str, list[str]] = {}
    for label in sorted(counts, key=lambda label: (-counts[label], label)):
        groups.setdefault(label_variant_key(label), []).append(label)
    variants = [spellings for spellings in groups.values() if len(spellings) > 1]
    if not variants:
        return
    shown = "; ".join(" / ".join(f"{s!r} ({counts[s]})" for s in spellings) for spellings in variants)
    if not fold:
        messages.warnings.append(
            f"labels that differ only by case or spacing are separate classes: {shown}; "
            "pass --fold-case to read each group as its most frequent spelling"
        )
        return
    spelling = {label: spellings[0] for spellings in variants for label in spellings}
    messages.label_sets = [
        None if labels is None else tuple(sorted({spelling.get(label, label) for label in labels})) for labels in messages.label_sets
    ]
    messages.warnings.append(f"labels folded to their most frequent spelling: {shown}")


def fold_to(messages: MessageSet, labels: Iterable[str]) -> MessageSet:
    """A copy that spells each label as ``labels`` does where the two differ only by case or
    inner whitespace: data read with ``fold_case`` meets a model's or a training set's spelling."""
    known = {label_variant_key(label): label for label in labels}
    folded = [
        None if found is None else tuple(sorted({known.get(label_variant_key(label), label) for label in found}))
        for found in messages.label_sets
    ]
    return replace(messages, label_sets=folded)
