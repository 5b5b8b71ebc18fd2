"""Every known kind of bad input, one table row each: refused with its file, row and column
(or read with a warning), and under --skip-bad-rows an exact account of every row."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from cli_in_process import run_cli

from textdistill.data.chunks import ChunkReader, FileToRead, input_files
from textdistill.data.messages import DataSpec, load_messages
from textdistill.errors import DataError
from textdistill.models import TfidfBaseline

N_ROWS = 60
BAD_ROW = 30  # the row (1-based, header not counted) that each bad file breaks


def _rows() -> list[list[str]]:
    return [[str(i), f"message {i} about my {'invoice' if i % 2 else 'parcel'}", "billing" if i % 2 else "delivery"] for i in range(1, N_ROWS + 1)]


def _csv_lines(header: str = "id,text,label", change: Callable[[list[str]], None] | None = None) -> str:
    """The table as CSV text, with ``change`` applied to its data lines (index 0: row 1)."""
    lines = [",".join(row) for row in _rows()]
    if change:
        change(lines)
    return "\n".join([header, *lines]) + "\n"


def _set(line: str) -> Callable[[list[str]], None]:
    def change(lines: list[str]) -> None:
        lines[BAD_ROW - 1] = line

    return change


def _jsonl(change: Callable[[list[str]], None]) -> str:
    lines = [json.dumps({"id": i, "text": t, "label": y}) for i, t, y in _rows()]
    change(lines)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Bad:
    """A bad file: its name and bytes, how it is read, and what the error must say. ``skipped``:
    the rows --skip-bad-rows leaves out (None: a file-level error that skipping cannot help)."""

    name: str
    content: bytes
    row: int | None
    column: str | None
    says: str
    skipped: int | None = 1
    spec: dict = field(default_factory=dict)


BAD = [
    Bad("unclosed-quote-label.csv", _csv_lines(change=_set(f'{BAD_ROW},message {BAD_ROW},"billing')).encode(), BAD_ROW, "label",
        "never closes", skipped=N_ROWS - BAD_ROW + 1),
    Bad("unclosed-quote-text.csv", _csv_lines(change=_set(f'{BAD_ROW},"message {BAD_ROW},billing')).encode(), BAD_ROW, "text",
        "never closes", skipped=N_ROWS - BAD_ROW + 1),
    Bad("quote-then-text.csv", _csv_lines(change=_set(f'{BAD_ROW},"message" {BAD_ROW},billing')).encode(), BAD_ROW, "text",
        "followed by more text"),
    Bad("repeated-text-column.csv", _csv_lines("id,text,label,text").encode(), None, "text", "columns 2 and 4", skipped=None),
    Bad("repeated-label-column.csv", _csv_lines("id,label,text,label").encode(), None, "label", "columns 2 and 4", skipped=None),
    Bad("nul-in-label.csv", _csv_lines(change=_set(f"{BAD_ROW},message,bill\x00ing")).encode(), BAD_ROW, "label", "U+0000"),
    Bad("line-break-in-label.csv", _csv_lines(change=_set(f'{BAD_ROW},message,"bill\ning"')).encode(), BAD_ROW, "label", "U+000A"),
    Bad("too-many-cells.csv", _csv_lines(change=_set(f"{BAD_ROW},hello,world,billing")).encode(), BAD_ROW, None, "has 4 cells"),
    Bad("empty-text.csv", _csv_lines(change=_set(f"{BAD_ROW},,billing")).encode(), BAD_ROW, "text", "text is empty"),
    Bad("no-label-cell.csv", _csv_lines(change=_set(f"{BAD_ROW},message")).encode(), BAD_ROW, "label", "no 'label' cell"),
    Bad("duplicate-id.csv", _csv_lines(change=_set(f"{BAD_ROW - 1},message,billing")).encode(), BAD_ROW, "id", "duplicate id"),
    Bad("not-utf8.csv", _csv_lines(change=_set(f"{BAD_ROW},caf\xe9,billing")).encode("cp1252"), BAD_ROW, "text", "not valid text"),
    Bad("too-long.csv", _csv_lines(change=_set(f"{BAD_ROW},{'x' * 2_000},billing")).encode(), BAD_ROW, "text", "more than the limit",
        spec={"max_text_chars": 1_000}),
    Bad("no-label-key.jsonl", _jsonl(_set(json.dumps({"id": BAD_ROW, "text": "message"}))).encode(), BAD_ROW, "label", "no 'label' key"),
    Bad("repeated-key.jsonl", _jsonl(_set(f'{{"id": {BAD_ROW}, "text": "a", "text": "b", "label": "billing"}}')).encode(), BAD_ROW, "text",
        "appears twice"),
    Bad("not-json.jsonl", _jsonl(_set('{"id": 30, "text": "message"')).encode(), BAD_ROW, None, "not valid JSON"),
    Bad("unknown-encoding.csv", _csv_lines().encode(), None, None, "unknown encoding 'foo'", skipped=None, spec={"encoding": "foo"}),
    Bad("utf16-without-bom.csv", _csv_lines().encode("utf-16-le"), None, None, "--encoding", skipped=None),
]


def _write(tmp_path: Path, content: bytes, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def _spec(case: Bad, **changes) -> DataSpec:
    return DataSpec(id_column="id", **{**case.spec, **changes})


@pytest.mark.parametrize("case", BAD, ids=[case.name for case in BAD])
def test_bad_input_is_refused_with_file_row_and_column(case, tmp_path):
    path = _write(tmp_path, case.content, case.name)
    with pytest.raises(DataError) as info:
        load_messages(path, _spec(case))
    error = info.value
    assert error.file == str(path) and (error.row, error.column) == (case.row, case.column)
    assert case.says in str(error) and "What to do:" in str(error)


@pytest.mark.parametrize("case", [c for c in BAD if c.skipped is not None], ids=[c.name for c in BAD if c.skipped is not None])
def test_skipping_accounts_for_every_row(case, tmp_path):
    path = _write(tmp_path, case.content, case.name)
    messages = load_messages(path, _spec(case, skip_bad_rows=True))
    assert len(messages.skipped) == case.skipped
    assert len(messages) + len(messages.skipped) == N_ROWS
    assert sorted(messages.rows + [s.row for s in messages.skipped]) == list(range(1, N_ROWS + 1))
    first = min(messages.skipped, key=lambda s: s.row)
    assert (first.row, first.column) == (case.row, case.column) and case.says in first.problem
    # the rows before the bad one are read as written
    assert messages.texts[: BAD_ROW - 1] == [text for _, text, _ in _rows()[: BAD_ROW - 1]]


def test_lines_swallowed_by_an_unclosed_quote_name_the_row_that_opened_it(tmp_path):
    case = BAD[0]
    messages = load_messages(_write(tmp_path, case.content, case.name), _spec(case, skip_bad_rows=True))
    swallowed = [s for s in messages.skipped if s.row > BAD_ROW]
    assert [s.row for s in swallowed] == list(range(BAD_ROW + 1, N_ROWS + 1))
    assert all(f"row {BAD_ROW} opens" in s.problem for s in swallowed)


def test_the_chunk_reader_of_predict_reads_bad_files_as_load_messages_does(tmp_path):
    case = BAD[1]
    path = _write(tmp_path, case.content, case.name)
    todo = FileToRead(0, input_files([path])[0])
    with pytest.raises(DataError) as info:
        list(ChunkReader(_spec(case), chunk_size=8, prefix_ids=False).read(todo))
    assert (info.value.row, info.value.column) == (BAD_ROW, "text")
    chunks = list(ChunkReader(_spec(case, skip_bad_rows=True), chunk_size=8, prefix_ids=False).read(todo))
    assert sum(len(chunk) for chunk in chunks) == BAD_ROW - 1 and sum(chunk.skipped for chunk in chunks) == case.skipped


# -- files that are read, with a warning where something is worth a look ----------------------
def test_rows_short_of_an_optional_column_are_counted(tmp_path):
    lines = [",".join([*row, "note"]) for row in _rows()]
    lines[4] = lines[4].rsplit(",", 1)[0]
    lines[9] = lines[9].rsplit(",", 1)[0]
    path = tmp_path / "short.csv"
    path.write_text("\n".join(["id,text,label,note", *lines]) + "\n", encoding="utf-8")
    messages = load_messages(path, DataSpec(id_column="id"))
    assert len(messages) == N_ROWS and not messages.skipped
    assert messages.warnings == ["2 rows have fewer cells than the header's 4 columns; their missing cells are read as empty (rows 5, 10)"]


def test_labels_that_differ_by_case_or_spacing_are_warned_of_or_folded(tmp_path):
    spellings = {0: "Billing", 2: "BILLING", 1: "late delivery", 3: "late delivery", 5: "late  delivery", 7: "Late Delivery"}

    def change(lines: list[str]) -> None:
        for index, label in spellings.items():
            lines[index] = lines[index].rsplit(",", 1)[0] + "," + label

    path = tmp_path / "case.csv"
    path.write_text(_csv_lines(change=change), encoding="utf-8")
    read = load_messages(path, DataSpec(id_column="id"))
    assert [labels[0] for labels in read.labels][:8] == ["Billing", "late delivery", "BILLING", "late delivery", "billing", "late  delivery", "billing", "Late Delivery"]
    (warning,) = read.warnings
    assert "'billing' (28) / 'BILLING' (1) / 'Billing' (1)" in warning
    assert "'late delivery' (2) / 'Late Delivery' (1) / 'late  delivery' (1)" in warning and "--fold-case" in warning
    folded = load_messages(path, DataSpec(id_column="id", fold_case=True))
    expected = [y for _, _, y in _rows()]
    for index in (1, 3, 5, 7):
        expected[index] = "late delivery"
    assert [labels[0] for labels in folded.labels] == expected


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_a_byte_order_mark_says_the_encoding(encoding, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("id,text,label\n1,grüße,billing\n2,café,delivery\n".encode(encoding))
    messages = load_messages(path, DataSpec(id_column="id"))
    assert messages.columns == ("id", "text", "label") and messages.texts == ["grüße", "café"]


def test_texts_longer_than_pythons_csv_field_limit_are_read(tmp_path):
    body = "forwarded thread, " * 10_000  # 180,000 characters, over csv's default of 131,072
    path = tmp_path / "long.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["text", "label"], [body, "billing"], ["short", "delivery"]])
    assert load_messages(path).texts == [body.strip(), "short"]
    cut = load_messages(path, DataSpec(max_text_chars=1_000, long_text="cut"))
    assert [len(text) for text in cut.texts] == [1_000, 5]
    assert cut.warnings == ["1 texts longer than 1,000 characters were cut to that length (rows 1)"]


# -- through the command line: exit code 2, the place, no traceback -----------------------------
@pytest.mark.parametrize("name", ["unclosed-quote-label.csv", "repeated-text-column.csv", "no-label-key.jsonl", "unknown-encoding.csv"])
def test_the_cli_refuses_bad_files_without_a_traceback(name, tmp_path):
    case = next(c for c in BAD if c.name == name)
    path = _write(tmp_path, case.content, case.name)
    result = run_cli("baseline", "--train", path, "--out", tmp_path / "m", "--id-column", "id", "--encoding", case.spec.get("encoding", "utf-8"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(path) in result.stderr and case.says in result.stderr
    if case.row is not None:
        assert f"row {case.row}" in result.stderr
    if case.column is not None:
        assert f"column '{case.column}'" in result.stderr


def test_the_cli_lists_every_skipped_row_beside_the_model(tmp_path):
    case = BAD[0]
    path = _write(tmp_path, case.content, case.name)
    result = run_cli("baseline", "--train", path, "--out", tmp_path / "m", "--id-column", "id", "--skip-bad-rows", "--quiet")
    assert result.returncode == 0, result.stderr
    listing = tmp_path / "m" / "skipped_rows.csv"
    assert f"{case.skipped} bad rows skipped" in result.stderr
    assert f"... and {case.skipped - 5} more (all listed in {listing})" in result.stderr
    with listing.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["row"]) for row in rows] == list(range(BAD_ROW, N_ROWS + 1))
    assert rows[0]["column"] == "label" and "never closes" in rows[0]["problem"]
    training_data = json.loads((tmp_path / "m" / "manifest.json").read_text())["training_data"]
    assert training_data["skipped_rows"] == case.skipped
    assert [(r["row"], r["column"], r["problem"]) for r in training_data["skipped"]] == [(int(r["row"]), r["column"] or None, r["problem"]) for r in rows]


def test_evaluate_says_so_when_no_row_is_left(tmp_path):
    model = tmp_path / "model"
    TfidfBaseline().fit(["refund please", "parcel late"] * 3, [("refund",), ("delivery",)] * 3, multi_label=False).save(model)
    test = tmp_path / "test.csv"
    test.write_text("text,label\nrefund my money,warranty\nwhere is it,warranty\n", encoding="utf-8")
    result = run_cli("evaluate", model, "--data", test, "--json", tmp_path / "e.json", "--skip-bad-rows", "--no-cost", "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(test) in result.stderr and "no messages are left" in result.stderr and "column 'label'" in result.stderr


def test_the_pipeline_lists_skipped_rows_and_warnings_and_folds_test_labels_to_the_training_spelling(tmp_path):
    from textdistill.pipeline import Pipeline, RunConfig

    train = _write(tmp_path, BAD[0].content, "train.csv")
    test = tmp_path / "test.csv"
    test.write_text("id,text,label\n1,my invoice,BILLING\n2,my parcel,Delivery\n3,my bill,billing\n", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[run]\nstages = ["load"]\n\n[data]\ntrain = "{train}"\ntest = "{test}"\nid_column = "id"\nskip_bad_rows = true\nfold_case = true\n',
        encoding="utf-8",
    )
    state = Pipeline(RunConfig.from_toml(config), tmp_path / "run").run()
    assert [labels[0] for labels in state.test.labels] == ["billing", "delivery", "billing"]
    summary = json.loads((tmp_path / "run" / "data" / "summary.json").read_text())
    assert summary["train"]["skipped_rows"] == BAD[0].skipped and summary["train"]["skipped_rows_file"] == "skipped_rows.csv"
    assert "folded" in summary["test"]["warnings"][0]
    with (tmp_path / "run" / "data" / "skipped_rows.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == BAD[0].skipped


def test_predict_lists_every_skipped_row_in_its_output_directory(tmp_path):
    model = tmp_path / "model"
    texts = ["refund please", "parcel late", "password reset"] * 3
    TfidfBaseline().fit(texts, [("refund",), ("delivery",), ("login",)] * 3, multi_label=False).save(model)
    case = BAD[1]  # the unclosed quote in the text column: predict reads texts only
    path = _write(tmp_path, case.content, case.name)
    result = run_cli("predict", model, "--data", path, "--out", tmp_path / "p", "--skip-bad-rows", "--quiet")
    assert result.returncode == 0, result.stderr
    listing = tmp_path / "p" / "skipped_rows.csv"
    assert f"... and {case.skipped - 5} more (all listed in {listing})" in result.stderr
    with listing.open(encoding="utf-8") as handle:
        assert [int(row["row"]) for row in csv.DictReader(handle)] == list(range(BAD_ROW, N_ROWS + 1))
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["counts"]["skipped_rows"] == case.skipped
