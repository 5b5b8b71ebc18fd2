"""The command line: help, clean errors, and the README's workflow on real files."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest
import typer
from rich.panel import Panel
from typer.testing import CliRunner

from textdistill.cli import app
from textdistill.console import stderr_console
from textdistill.pipeline import STAGE_ORDER
from textdistill.transfer import TransferSet

COMMANDS = ["demo", "run", "baseline", "teach", "label", "augment", "distill", "early-exit", "compress", "evaluate", "report", "sample", "predict", "suggest", "check", "automate", "rate", "reject", "drift", "serve"]
runner = CliRunner()


def cli(*args, timeout=300, env=None):
    return subprocess.run(
        [sys.executable, "-m", "textdistill", *map(str, args)], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_help_lists_every_command_and_each_has_an_example():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
        sub = runner.invoke(app, [command, "--help"])
        assert sub.exit_code == 0 and "Example" in sub.output, command


def help_at_80_columns(*command):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def test_every_help_is_whole_at_80_columns():
    group = typer.main.get_command(app)
    for name, command in [(None, group), *group.commands.items()]:
        text = help_at_80_columns(*[name] if name else [])
        where = name or "textdistill"
        assert "…" not in text and "<bool>" not in text, where
        assert not re.search(r"\w\.\.\.$", text, re.MULTILINE), f"{where}: a summary cut short"
        assert max(map(len, text.splitlines())) <= 80, where
        for param in command.params:
            for option in [*param.opts, *param.secondary_opts]:
                if option.startswith("-"):
                    assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), f"{where}: {option} is not shown whole"


def test_top_level_and_run_help_list_the_pipelines_stages_in_order():
    top = " ".join(help_at_80_columns().split())
    assert ", ".join(STAGE_ORDER) in top
    listed = [line.split()[0] for line in help_at_80_columns("run").splitlines() if line.startswith("    ") and line.split()[0] in STAGE_ORDER]
    assert listed == list(STAGE_ORDER)


def test_boxes_wrap_at_the_console_width_and_lines_of_text_stay_whole(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    sentence = "The teacher is NOT better than the baseline: students distilled from it will be weak, so train longer."
    path = "/runs/" + "very-long-directory-name/" * 5 + "report.html"
    console = stderr_console()
    console.print(Panel(sentence, title="warning: weak teacher"))
    console.print(f"report: {path}")
    lines = capsys.readouterr().err.splitlines()
    panel, line = lines[:-1], lines[-1]
    assert max(map(len, panel)) <= 80
    assert " ".join(row.strip("│ ") for row in panel[1:-1]) == sentence  # every word, none cut off
    assert line == f"report: {path}"  # one line, to copy whole


def test_bad_input_is_a_clean_error_not_a_traceback(tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("text,label\nrefund please,billing\n,delivery\n", encoding="utf-8")
    result = cli("baseline", "--train", bad, "--out", tmp_path / "m")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}, row 2, column 'text'" in result.stderr and "What to do" in result.stderr


def test_baseline_evaluate_report_on_real_files(sample_data, tmp_path):
    model = tmp_path / "baseline"
    trained = cli("baseline", "--train", sample_data.train, "--out", model, "--text-column", "subject", "--text-column", "body", "--id-column", "id", "--quiet")
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "eval.json"
    evaluated = cli(
        "evaluate", model, "--data", sample_data.test, "--json", out, "--threads", "1", "--latency-samples", "20", "--min-messages", "300", "--repeats", "2", "--quiet"
    )
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(out.read_text())
    assert result["n_messages"] == 160 and result["micro_f1"] > 0.6  # text columns came from the manifest
    # as [evaluate] min_messages and repeats: 300 messages rounded up to whole batches of 256, two runs
    assert result["settings"]["throughput_messages"] == 512 and result["settings"]["repeats"] == 2
    assert "ms/message" in evaluated.stdout
    reported = cli("report", out, "--out", tmp_path / "report")
    assert reported.returncode == 0 and (tmp_path / "report" / "report.html").exists()


RUN_CONFIG = """
[data]
train = "{train}"
test = "{test}"
text_columns = ["subject", "body"]
id_column = "id"

[evaluate]
threads = 1
latency_samples = 20
warmup = 2
min_messages = 256
repeats = 1
"""


def test_run_ends_with_the_results_table_and_the_report_path_once(sample_data, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(RUN_CONFIG.format(train=sample_data.train, test=sample_data.test), encoding="utf-8")
    result = cli("run", config, "--out", tmp_path / "run", "--quiet", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    report = tmp_path / "run" / "report" / "report.html"
    *table, last = result.stdout.rstrip("\n").splitlines()
    assert last == f"Report: {report}" and (result.stdout + result.stderr).count(str(report)) == 1
    assert max(map(len, table)) <= 80
    baseline = json.loads((tmp_path / "run" / "evaluations" / "baseline.json").read_text())
    header = next(line for line in table if line.startswith("model"))
    row = next(line for line in table if line.startswith("baseline"))
    assert header.split()[:3] == ["model", "role", "micro-F1"]  # multi-label data: the report's headline metric
    assert row.split()[:3] == ["baseline", "baseline", f"{baseline['micro_f1']:.3f}"]


def test_baseline_multi_label_options_reach_the_manifest_and_bad_ones_are_refused(sample_data, tmp_path):
    columns = ["--text-column", "subject", "--text-column", "body", "--id-column", "id", "--quiet"]
    model = tmp_path / "baseline"
    trained = cli("baseline", "--train", sample_data.train, "--out", model, "--threshold-mode", "auto", "--multi-label-loss", "balanced", *columns)
    assert trained.returncode == 0, trained.stderr
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["threshold_mode"] == "auto" and manifest["config"]["baseline"]["multi_label_loss"] == "balanced"
    assert set(manifest["own_thresholds"]) < set(manifest["labels"])
    for option, value, message in (("--multi-label-loss", "focal", "'focal' is not available for the TF-IDF baseline"), ("--threshold-mode", "best", "threshold mode 'best' is unknown")):
        refused = cli("baseline", "--train", sample_data.train, "--out", tmp_path / value, option, value, *columns)
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / value / "manifest.json").exists()


def test_label_distill_evaluate_with_a_baseline_teacher(sample_data, tmp_path):
    columns = ["--text-column", "subject", "--text-column", "body", "--id-column", "id"]
    teacher = tmp_path / "teacher"
    assert cli("baseline", "--train", sample_data.train, "--out", teacher, *columns, "--quiet").returncode == 0
    labelled = cli("label", "--teacher", teacher, "--texts", sample_data.unannotated, "--out", tmp_path / "transfer", "--quiet")
    assert labelled.returncode == 0, labelled.stderr
    # More augmented copies, labelled as a second transfer set: none repeats a text of the first.
    augmented = cli(
        "augment", "--texts", sample_data.unannotated, *columns, "--methods", "mask,ngram", "--factor", "2", "--seed", "1",
        "--exclude", tmp_path / "transfer", "--out", tmp_path / "more.csv",
    )
    assert augmented.returncode == 0, augmented.stderr
    rows = list(csv.DictReader((tmp_path / "more.csv").open(encoding="utf-8")))
    texts = [row["text"] for row in rows]
    assert rows and len(set(texts)) == len(texts) and not set(texts) & set(TransferSet.load(tmp_path / "transfer").texts)
    assert {row["origin"] for row in rows} <= {"mask", "ngram"} and all(row["id"].startswith(row["source_id"] + "#aug") for row in rows)
    more = cli("label", "--teacher", teacher, "--texts", tmp_path / "more.csv", "--text-column", "text", "--id-column", "id", "--out", tmp_path / "more", "--quiet")
    assert more.returncode == 0, more.stderr
    more_set = TransferSet.load(tmp_path / "more")
    assert more_set.texts == texts
    # The provenance augment wrote is kept: these are augmented copies, not originals.
    assert more_set.origins == [row["origin"] for row in rows] and more_set.source_ids == [row["source_id"] for row in rows]
    assert more_set.manifest["counts"]["originals"] == 0 and more_set.manifest["counts"]["augmented"] == len(rows)
    assert f"(0 original, {len(rows):,} augmented" in more.stdout
    student = tmp_path / "static"
    distilled = cli(
        "distill", "--teacher", teacher, "--transfer", tmp_path / "transfer", "--transfer", tmp_path / "more", "--train", sample_data.train, "--student", "static",
        "--set", "embeddings=hash", "--set", "dim=32", "--loss", "kd:0.5:temperature=2", "--loss", "ce:0.5", "--epochs", "3", "--out", student, "--quiet",
    )
    assert distilled.returncode == 0, distilled.stderr
    assert "Saved static student" in distilled.stdout
    manifest = json.loads((student / "manifest.json").read_text())
    assert manifest["config"]["distillation"]["transfer"] == [str((tmp_path / name).resolve()) for name in ("transfer", "more")]
    # the sample is multi-label: the ce term records the label loss it used
    assert manifest["config"]["distillation"]["losses"] == [{"name": "kd", "weight": 0.5, "temperature": 2}, {"multi_label_loss": "bce", "name": "ce", "weight": 0.5}]
    out = tmp_path / "eval.json"
    evaluated = cli("evaluate", student, "--data", sample_data.test, "--json", out, "--threads", "1", "--no-cost", "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(out.read_text())["micro_f1"] > 0.3  # text columns came from the teacher's manifest
    bad = cli("distill", "--teacher", teacher, "--transfer", tmp_path / "transfer", "--student", "static", "--loss", "kd:heavy", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "not a number" in bad.stderr


def test_skip_bad_rows_count_reaches_the_output(tmp_path):
    data = tmp_path / "train.csv"
    rows = "".join(f"refund my order {i},billing\nparcel {i} is late,delivery\n" for i in range(10))
    data.write_text("text,label\n" + rows + ",billing\n", encoding="utf-8")
    result = cli("baseline", "--train", data, "--out", tmp_path / "m", "--skip-bad-rows", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "1 bad rows skipped" in result.stderr
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["training_data"]["skipped_rows"] == 1


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_runs_end_to_end(tmp_path):
    # A safety net, not a speed target: the demo's time is measured in benchmarks/RESULTS.md.
    result = cli("demo", "--out", tmp_path / "demo", "--quiet", timeout=1400)
    assert result.returncode == 0, result.stderr
    report = tmp_path / "demo" / "run" / "report" / "report.html"
    assert f"Report: {report}" in result.stdout and report.exists()
    assert (result.stdout + result.stderr).count(str(report)) == 1
    evaluation = json.loads((tmp_path / "demo" / "run" / "evaluations" / "baseline.json").read_text())
    assert evaluation["multi_label"] and evaluation["hierarchical"] and len(evaluation["per_label"]) >= 12
    evaluations = sorted(p.stem for p in (tmp_path / "demo" / "run" / "evaluations").glob("*.json"))
    assert evaluations == ["baseline", "bilstm", "bilstm-int8", "static", "static-int8", "teacher"]
    assert all(name in report.read_text() for name in evaluations)
    # the results table ends the output: the report's rows, each compressed copy under its source
    rows = [cells[0] for cells in map(str.split, result.stdout.splitlines()) if len(cells) > 2 and cells[1] in ("baseline", "teacher", "student", "int8")]
    assert rows == ["baseline", "teacher", "bilstm", "bilstm-int8", "static", "static-int8"]
    # validation is the sample's recent-messages file, and every annotated message trains
    split = json.loads((tmp_path / "demo" / "run" / "data" / "split.json").read_text())
    with (tmp_path / "demo" / "data" / "validation.csv").open(newline="") as handle:
        assert split["validation"] == [row["id"] for row in csv.DictReader(handle)]
    assert len(split["train"]) == 1200
    # then what to annotate next: fifty unannotated messages, the first five shown before the report path
    queue = tmp_path / "demo" / "run" / "suggest" / "queue.csv"
    with queue.open(newline="") as handle:
        queued = list(csv.DictReader(handle))
    assert len(queued) == 50 and all(row["id"].startswith("msg-") and row["annotated"] == "false" for row in queued)
    assert "Annotate next (diverse; the first 5 of 50):" in result.stdout and f"Queue: {queue}" in result.stdout
    # and which annotations look wrong: the label check finds most of the 24 the sample planted
    assert "Annotations that look wrong (" in result.stdout
    found = re.search(r"The sample has 24 annotations planted wrong \(data/label_errors.csv\): (\d+) of them are the check's 24 most suspect", result.stdout)
    assert found and int(found.group(1)) >= 18, result.stdout
