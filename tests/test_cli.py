"""The command line: help, clean errors, and the README's workflow on real files."""

import csv
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from textdistill.cli import app
from textdistill.transfer import TransferSet

COMMANDS = ["demo", "run", "baseline", "teach", "label", "augment", "distill", "early-exit", "compress", "evaluate", "report", "sample", "predict"]
runner = CliRunner()


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "textdistill", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_command_and_each_has_an_example():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
        sub = runner.invoke(app, [command, "--help"])
        assert sub.exit_code == 0 and "Example" in sub.output, command


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
    evaluated = cli("evaluate", model, "--data", sample_data.test, "--json", out, "--threads", "1", "--latency-samples", "20", "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(out.read_text())
    assert result["n_messages"] == 160 and result["micro_f1"] > 0.6  # text columns came from the manifest
    assert "ms/message" in evaluated.stdout
    reported = cli("report", out, "--out", tmp_path / "report")
    assert reported.returncode == 0 and (tmp_path / "report" / "report.html").exists()


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
    evaluation = json.loads((tmp_path / "demo" / "run" / "evaluations" / "baseline.json").read_text())
    assert evaluation["multi_label"] and evaluation["hierarchical"] and len(evaluation["per_label"]) >= 12
    evaluations = sorted(p.stem for p in (tmp_path / "demo" / "run" / "evaluations").glob("*.json"))
    assert evaluations == ["baseline", "bilstm", "bilstm-int8", "static", "static-int8", "teacher"]
    assert all(name in report.read_text() for name in evaluations)
