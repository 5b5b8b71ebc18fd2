"""Properties of the message loaders: what csv.writer, json.dumps or pyarrow write reads back
as written, and a damaged file reads with an exact account of its rows or fails with a DataError,
never with another exception."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from tempfile import TemporaryDirectory

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textdistill.data.messages import DataSpec, load_messages
from textdistill.errors import DataError

# What the loader keeps as written: texts and labels without surrounding whitespace (it strips
# them), labels without control characters (refused) or the hierarchy separator (normalised).
texts = st.text(min_size=1, max_size=40).filter(lambda text: text == text.strip() and text)
labels = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=">"), min_size=1, max_size=12).filter(
    lambda label: label == label.strip() and label
)
tables = st.lists(st.tuples(texts, labels), min_size=1, max_size=12)
FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _write(directory: Path, kind: str, rows: list[tuple[str, str]], ensure_ascii: bool = False) -> Path:
    path = directory / f"m.{kind}"
    if kind == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(("text", "label"))
            writer.writerows(rows)
    elif kind == "jsonl":
        lines = (json.dumps({"text": text, "label": label}, ensure_ascii=ensure_ascii) for text, label in rows)
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    else:
        pq.write_table(pa.table({"text": [t for t, _ in rows], "label": [y for _, y in rows]}), path)
    return path


@FAST
@given(rows=tables, kind=st.sampled_from(["csv", "jsonl", "parquet"]), ensure_ascii=st.booleans())
def test_what_the_writers_write_reads_back_identical(rows, kind, ensure_ascii):
    with TemporaryDirectory() as directory:
        messages = load_messages(_write(Path(directory), kind, rows, ensure_ascii))
    assert messages.texts == [text for text, _ in rows]
    assert messages.labels == [(label,) for _, label in rows]
    assert messages.rows == list(range(1, len(rows) + 1)) and not messages.skipped


# Texts without quotes or line breaks: any quote or line break in a damaged file is damage, so
# every physical line after the header is one row, used or skipped.
plain_texts = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters='"'), min_size=1, max_size=30).filter(
    lambda text: text == text.strip() and text
)
plain_labels = st.sampled_from(["billing", "delivery", "Billing", "login, account"])


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(plain_texts, plain_labels), min_size=1, max_size=10),
    kind=st.sampled_from(["csv", "jsonl"]),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_a_damaged_file_reads_with_an_exact_account_or_fails_with_a_data_error(rows, kind, flips):
    with TemporaryDirectory() as directory:
        path = _write(Path(directory), kind, rows, ensure_ascii=True)
        data = bytearray(path.read_bytes())
        for where, value in flips:
            data[int(where * len(data))] = value
        path.write_bytes(bytes(data))
        try:
            messages = load_messages(path, DataSpec(skip_bad_rows=True))
        except DataError:
            return
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return  # a byte order mark now says UTF-16 or -32: other lines altogether
    text = bytes(data).decode("utf-8", errors="surrogateescape")
    if kind == "csv":
        lines = [line for line in io.StringIO(text, newline="").readlines()[1:] if line.strip("\r\n")]
    else:
        lines = [line for line in text.split("\n") if line.strip()]
    assert len(messages) + len(messages.skipped) == len(lines)
    assert sorted(messages.rows + [s.row for s in messages.skipped]) == list(range(1, len(lines) + 1))


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(plain_texts, plain_labels), min_size=1, max_size=10), flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=3))
def test_a_damaged_parquet_file_reads_or_fails_with_a_data_error(rows, flips):
    with TemporaryDirectory() as directory:
        path = _write(Path(directory), "parquet", rows)
        data = bytearray(path.read_bytes())
        for where, value in flips:
            data[int(where * len(data))] = value
        path.write_bytes(bytes(data))
        try:
            messages = load_messages(path, DataSpec(skip_bad_rows=True))
        except DataError:
            return
    # a table that still reads: every row of it used or skipped, once, and only text as text
    assert sorted(messages.rows + [s.row for s in messages.skipped]) == list(range(1, len(messages) + len(messages.skipped) + 1))
    assert all(isinstance(text, str) and text for text in messages.texts)
