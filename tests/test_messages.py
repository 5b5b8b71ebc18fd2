"""Loading messages, and a clear error for every kind of bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textdistill.data.email import clean_email
from textdistill.data.messages import DataSpec, describe_cleaning, load_messages, require_two_classes, text_cleaning
from textdistill.errors import DataError


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


SINGLE = [["my card was charged twice", "billing"], ["where is my parcel", "delivery"], ["refund please", "billing"]]


# -- reading the three formats -------------------------------------------------------------------
def test_csv_jsonl_and_parquet_read_the_same_messages(tmp_path):
    records = [{"text": t, "label": y} for t, y in SINGLE]
    csv_set = load_messages(write_csv(tmp_path / "m.csv", ["text", "label"], SINGLE))
    jsonl_set = load_messages(write_jsonl(tmp_path / "m.jsonl", records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "m.parquet")
    parquet_set = load_messages(tmp_path / "m.parquet")
    for messages in (csv_set, jsonl_set, parquet_set):
        assert messages.texts == [t for t, _ in SINGLE]
        assert messages.labels == [("billing",), ("delivery",), ("billing",)]
        assert messages.multi_label is False
        assert messages.rows == [1, 2, 3]


def test_multiline_quoted_csv_cells_are_one_message(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["text", "label"], [["line one\nline two, with comma", "a"], ["x", "b"]])
    assert load_messages(path).texts == ["line one\nline two, with comma", "x"]


def test_several_text_columns_are_joined_and_ids_read(tmp_path):
    path = write_csv(
        tmp_path / "m.csv",
        ["id", "subject", "body", "label"],
        [["a1", "Refund", "Please refund order 12", "billing"], ["a2", "", "Parcel is late", "delivery"]],
    )
    messages = load_messages(path, DataSpec(text_columns=("subject", "body"), id_column="id"))
    assert messages.texts == ["Refund\n\nPlease refund order 12", "Parcel is late"]
    assert messages.ids == ["a1", "a2"]


def test_multi_label_with_separator_hierarchy_and_empty_set(tmp_path):
    path = write_csv(
        tmp_path / "m.csv",
        ["text", "labels"],
        [["late and broken", "Delivery > Late|Delivery>Damaged"], ["just saying hi", ""], ["refund", "Billing > Refund"]],
    )
    messages = load_messages(path, DataSpec(label_sep="|"))
    assert messages.multi_label is True
    # hierarchy separators are normalised; an empty cell is the valid annotation "nothing applies"
    assert messages.labels == [("Delivery > Damaged", "Delivery > Late"), (), ("Billing > Refund",)]


def test_jsonl_labels_may_be_lists(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"text": "a", "labels": ["x", "y"]}, {"text": "b", "labels": []}])
    assert load_messages(path).labels == [("x", "y"), ()]


def test_annotated_flag_column_separates_unannotated_messages(tmp_path):
    path = write_csv(
        tmp_path / "m.csv",
        ["text", "label", "annotated"],
        [["a", "x", "true"], ["b", "", "false"], ["c", "y", "1"]],
    )
    messages = load_messages(path, DataSpec(annotated_column="annotated"))
    assert messages.annotated().texts == ["a", "c"]
    assert messages.unannotated().texts == ["b"]


def test_unannotated_file_needs_no_label_column(tmp_path):
    path = write_csv(tmp_path / "pool.csv", ["text"], [["hello"], ["anyone there"]])
    messages = load_messages(path, annotated=False)
    assert messages.label_sets == [None, None]


def test_encoding_option_reads_a_legacy_file(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("text,label\ncaf\xe9 closed,a\nopen,b\n".encode("cp1252"))
    assert load_messages(path, DataSpec(encoding="cp1252")).texts[0] == "café closed"


def test_email_clean_up_is_applied_when_asked(tmp_path):
    body = "Where is my order?\n\nOn Mon, 2 Mar 2026, Support <s@example.com> wrote:\n> We shipped it."
    path = write_csv(tmp_path / "m.csv", ["text", "label"], [[body, "a"], ["b", "b"]])
    assert "We shipped it" in load_messages(path).texts[0]
    assert "We shipped it" not in load_messages(path, DataSpec(clean_email=True)).texts[0]


QUOTED_THREAD = "\n\nOn Mon, 2 Mar 2026, Support <s@example.com> wrote:\n" + "> We shipped it on Friday, tracking to follow.\n" * 40
SIGNED = "\n\n-- \nJane Doe\nAccounts payable, ACME Ltd.\n+1 555 0100"


def _email_rows() -> list[list[str]]:
    """Emails with threads and signatures of different lengths, one bare, one annotated-flag off."""
    return [
        ["Where is my order 1182?" + QUOTED_THREAD, "delivery", "true"],
        ["Please send the corrected invoice." + SIGNED, "billing", "true"],
        ["I cannot log in since this morning.", "account", "false"],
        ["Charged twice for March." + SIGNED + QUOTED_THREAD[:400], "billing", "true"],
        ["", "billing", "true"],  # empty: a bad row, skipped
    ]


def test_cleaning_records_each_texts_characters_before_and_after(tmp_path):
    rows = _email_rows()
    path = write_csv(tmp_path / "m.csv", ["text", "label", "annotated"], rows)
    spec = DataSpec(clean_email=True, skip_bad_rows=True, annotated_column="annotated")
    messages = load_messages(path, spec)
    raw = [text.strip() for text, _, _ in rows[:4]]  # the loader strips each text column
    assert messages.cleaned_chars == [(len(text), len(clean_email(text))) for text in raw]
    assert [after for _, after in messages.cleaned_chars] == [len(text) for text in messages.texts]
    assert messages.cleaned_chars[0][1] < messages.cleaned_chars[0][0] / 5  # the thread was removed
    # subsets keep each message's own lengths
    assert messages.annotated().cleaned_chars == [messages.cleaned_chars[i] for i in (0, 1, 3)]
    assert messages.unannotated().cleaned_chars == [messages.cleaned_chars[2]]
    assert load_messages(path, DataSpec(skip_bad_rows=True, annotated_column="annotated")).cleaned_chars is None


def test_text_cleaning_summarises_what_clean_up_removed(tmp_path):
    rows = _email_rows()[:4]
    path = write_csv(tmp_path / "m.csv", ["text", "label", "annotated"], rows)
    summary = text_cleaning(load_messages(path, DataSpec(clean_email=True, annotated_column="annotated")))
    before = [len(text.strip()) for text, _, _ in rows]
    after = [len(clean_email(text.strip())) for text, _, _ in rows]
    assert summary == {
        "messages": 4,
        "chars_before_p50": pytest.approx(np.median(before)),
        "chars_before_p95": pytest.approx(np.percentile(before, 95)),
        "chars_after_p50": pytest.approx(np.median(after)),
        "chars_after_p95": pytest.approx(np.percentile(after, 95)),
    }
    assert summary["chars_after_p95"] < summary["chars_before_p95"]
    assert describe_cleaning(summary).startswith(f"clean-up: median {np.median(before):,.0f} -> {np.median(after):,.0f} characters")
    assert text_cleaning(load_messages(path, DataSpec(annotated_column="annotated"))) is None


def test_a_text_long_only_by_its_quoted_thread_is_measured_after_clean_up(tmp_path):
    body = ("Where is my order 1182?" + QUOTED_THREAD).strip()
    path = write_csv(tmp_path / "m.csv", ["text", "label"], [[body, "delivery"], ["refund please", "billing"]])
    messages = load_messages(path, DataSpec(clean_email=True, max_text_chars=100))
    assert messages.texts[0] == clean_email(body) and messages.cleaned_chars[0] == (len(body), len(clean_email(body)))


# -- every bad input names file, row, column and what to do --------------------------------------
def assert_located(error: DataError, path: Path, row: int | None, column: str | None, *words: str) -> None:
    message = str(error)
    assert str(path) in message
    assert error.row == row
    assert error.column == column
    assert "What to do:" in message
    for word in words:
        assert word in message


def test_missing_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_messages(tmp_path / "nope.csv")
    assert_located(info.value, tmp_path / "nope.csv", None, None, "not found")


def test_empty_file_and_header_only_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        load_messages(empty)
    header_only = write_csv(tmp_path / "header.csv", ["text", "label"], [])
    with pytest.raises(DataError, match="no messages"):
        load_messages(header_only)


def test_missing_text_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["message", "label"], [["a", "x"]])
    with pytest.raises(DataError) as info:
        load_messages(path)
    assert_located(info.value, path, None, "text", "message, label", "--text-column")


def test_missing_label_column(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["text", "intent"], [["a", "x"]])
    with pytest.raises(DataError) as info:
        load_messages(path)
    assert_located(info.value, path, None, "label", "no label column", "--label-column")


def test_empty_text_cell(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["text", "label"], [["a", "x"], ["   ", "y"]])
    with pytest.raises(DataError) as info:
        load_messages(path)
    assert_located(info.value, path, 2, "text", "empty", "--skip-bad-rows")


def test_non_text_cell_in_jsonl_and_parquet(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"text": "a", "label": "x"}, {"text": 42, "label": "y"}])
    with pytest.raises(DataError) as info:
        load_messages(path)
    assert_located(info.value, path, 2, "text", "int", "not text")
    pq.write_table(pa.table({"text": [1.5, 2.5], "label": ["x", "y"]}), tmp_path / "m.parquet")
    with pytest.raises(DataError) as info:
        load_messages(tmp_path / "m.parquet")
    assert_located(info.value, tmp_path / "m.parquet", 1, "text", "float")


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"text,label\nfine,a\ncaf\xe9 closed,b\n")
    with pytest.raises(DataError) as info:
        load_messages(path)
    assert_located(info.value, path, 2, "text", "0xe9", "--encoding")


def test_empty_single_label_is_not_silently_unannotated(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["text", "label"], [["a", "x"], ["b", ""]])
    with pytest.raises(DataError) as info:
        load_messages(path)
    assert_located(info.value, path, 2, "label", "label is empty", "--annotated-column")


def test_duplicate_ids(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["id", "text", "label"], [["1", "a", "x"], ["2", "b", "y"], ["1", "c", "x"]])
    with pytest.raises(DataError) as info:
        load_messages(path, DataSpec(id_column="id"))
    assert_located(info.value, path, 3, "id", "duplicate id '1'", "first used in row 1")


def test_single_class(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["text", "label"], [["a", "x"], ["b", "x"]])
    with pytest.raises(DataError) as info:
        require_two_classes(load_messages(path))
    assert_located(info.value, path, None, "label", "same label ('x')")


def test_malformed_rows(tmp_path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("text,label\na,x\nb,y,extra\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_messages(csv_path)
    assert_located(info.value, csv_path, 2, None, "3 cells", "quote")
    jsonl_path = tmp_path / "m.jsonl"
    jsonl_path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label"\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_messages(jsonl_path)
    assert_located(info.value, jsonl_path, 2, None, "not valid JSON")


def test_unsupported_file_type(tmp_path):
    path = tmp_path / "m.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(DataError, match="unsupported file type"):
        load_messages(path)


def test_bad_annotated_flag(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["text", "label", "annotated"], [["a", "x", "maybe"]])
    with pytest.raises(DataError) as info:
        load_messages(path, DataSpec(annotated_column="annotated"))
    assert_located(info.value, path, 1, "annotated", "neither true nor false")


# -- skipping bad rows: counted, never silent -----------------------------------------------------
def test_skip_bad_rows_skips_and_records_each_problem(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(
        b"id,text,label\n"
        b"1,good one,x\n"
        b"2,,y\n"  # empty text
        b"3,caf\xe9,y\n"  # undecodable
        b"1,dup,x\n"  # duplicate id
        b"4,no label,\n"  # empty label
        b"5,good two,y\n"
    )
    messages = load_messages(path, DataSpec(id_column="id", skip_bad_rows=True))
    assert messages.texts == ["good one", "good two"]
    assert messages.rows == [1, 6]
    assert [(s.row, s.column) for s in messages.skipped] == [(2, "text"), (3, "text"), (4, "id"), (5, "label")]
    assert all(s.file == str(path) for s in messages.skipped)


def test_skip_bad_rows_still_fails_on_file_level_problems(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["message", "label"], [["a", "x"]])
    with pytest.raises(DataError, match="no text column"):
        load_messages(path, DataSpec(skip_bad_rows=True))


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    path = write_csv(tmp_path / "m.csv", ["text", "label"], [["", "x"], ["", "y"]])
    with pytest.raises(DataError, match="no usable messages"):
        load_messages(path, DataSpec(skip_bad_rows=True))
