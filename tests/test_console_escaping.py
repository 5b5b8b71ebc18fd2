"""User strings that look like rich markup (``[/oops]``, ``[bold]``, ``[/b]``) or emoji codes
(``:smile:``) reach the console as they are, through every error path of the real CLI (its entry
point, run in this process)."""

import io
import sys

import pytest
from cli_in_process import run_cli

from textdistill import progress
from textdistill.models import TfidfBaseline

HEADER = "[/oops]"  # a column name
ID = "[/b]:smile:"  # an id
LABEL = "[bold]Nope[/b]"  # a label
DIRECTORY = "[bold]in"  # a directory in every path


def assert_clean_error(result, *verbatim):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr, result.stderr
    for text in verbatim:
        assert str(text) in result.stderr, (text, result.stderr)


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / DIRECTORY
    folder.mkdir()
    return folder


ROWS = "".join(f"refund my order {i},billing\nparcel {i} is late,delivery\n" for i in range(6))


def test_a_missing_column_names_the_hostile_header_and_path(folder):
    data = folder / "train.csv"
    data.write_text(f"text,{HEADER}\nrefund please,billing\n", encoding="utf-8")
    result = run_cli("baseline", "--train", data, "--out", folder / "m")
    assert_clean_error(result, data, f"the columns are: text, {HEADER}")


def test_a_missing_text_column_named_on_the_command_line(folder):
    data = folder / "train.csv"
    data.write_text("text,label\n" + ROWS, encoding="utf-8")
    result = run_cli("baseline", "--train", data, "--out", folder / "m", "--text-column", HEADER)
    assert_clean_error(result, data, f"column '{HEADER}'")


def test_a_duplicate_id(folder):
    data = folder / "train.csv"
    data.write_text(f"id,text,label\n{ID},refund please,billing\n{ID},parcel late,delivery\n", encoding="utf-8")
    result = run_cli("baseline", "--train", data, "--out", folder / "m", "--id-column", "id")
    assert_clean_error(result, data, f"duplicate id '{ID}'")


def test_the_list_of_skipped_rows(folder):
    data = folder / "train.csv"
    data.write_text(f"{HEADER},label\n" + ROWS + ",billing\n", encoding="utf-8")
    result = run_cli("baseline", "--train", data, "--validation", data, "--text-column", HEADER, "--skip-bad-rows", "--out", folder / "m", "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"{data}: 1 bad rows skipped" in result.stderr
    assert f"row 13, column '{HEADER}': the message text is empty" in result.stderr


def test_an_unknown_label_at_evaluate(folder):
    texts, labels = zip(*(line.split(",") for line in ROWS.splitlines()))
    model = folder / "model"
    TfidfBaseline().fit(list(texts), [[label] for label in labels], multi_label=False).save(model, config={}, training_data={})
    data = folder / "test.csv"
    data.write_text(f"text,label\nrefund please,billing\nparcel late,{LABEL}\n", encoding="utf-8")
    result = run_cli("evaluate", model, "--data", data, "--json", folder / "e.json", "--no-cost")
    assert_clean_error(result, data, f"label '{LABEL}'")


def test_a_missing_file(folder):
    missing = folder / f"{HEADER}x.csv"
    assert_clean_error(run_cli("baseline", "--train", missing, "--out", folder / "m"), missing)
    # relative, as typed: the markup-looking start of the path is kept too
    assert_clean_error(run_cli("baseline", "--train", "[bold]x.csv", "--out", "m", cwd=folder), "[bold]x.csv")


def test_a_damaged_or_missing_model_directory(folder):
    damaged = folder / f"{HEADER}model"
    damaged.mkdir(parents=True)  # "[" / "oops]model": a closing tag across two path parts
    (damaged / "manifest.json").write_text("{", encoding="utf-8")
    data = folder / "test.csv"
    data.write_text("text,label\nrefund please,billing\n", encoding="utf-8")
    assert_clean_error(run_cli("evaluate", damaged, "--data", data, "--json", folder / "e.json"), damaged)
    assert_clean_error(run_cli("evaluate", folder / "[/none]", "--data", data, "--json", folder / "e.json"), folder / "[/none]")


def test_a_run_config_and_the_pipelines_notes(folder):
    assert_clean_error(run_cli("run", folder / "[/b]missing.toml"), folder / "[/b]missing.toml")
    (folder / "train.csv").write_text(f"{HEADER},label\n" + ROWS + ",billing\n", encoding="utf-8")
    config = folder / "run.toml"
    config.write_text(
        f'[run]\nstages = ["load"]\n[data]\ntrain = "train.csv"\ntest = "train.csv"\ntext_columns = ["{HEADER}"]\nskip_bad_rows = true\n',
        encoding="utf-8",
    )
    result = run_cli("run", config, "--out", folder / "run")
    assert result.returncode == 0, result.stderr
    assert "train: 12 messages, 1 bad rows skipped" in result.stderr and "MarkupError" not in result.stderr


@pytest.mark.parametrize("terminal", [True, False], ids=["live bar", "log lines"])
def test_progress_descriptions_are_printed_as_they_are(monkeypatch, terminal):
    class Stderr(io.StringIO):
        def isatty(self):
            return terminal

    stderr = Stderr()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.setattr(progress, "LOG_EVERY_SECONDS", 0.0)  # a log line after every item
    progress.set_quiet(False)
    assert list(progress.track(range(3), f"Reading {DIRECTORY}/{HEADER}.csv")) == [0, 1, 2]
    assert f"Reading {DIRECTORY}/{HEADER}.csv" in stderr.getvalue()
