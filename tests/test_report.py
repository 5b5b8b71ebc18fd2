"""The side-by-side report: collecting evaluations, Markdown/HTML/SVG content, the page as Chromium renders it."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from rich.console import Console

from textdistill.evaluate.report import ReportFiles, build_report, collect_evaluations
from textdistill.evaluate.report.analysis import Analysis
from textdistill.evaluate.report.terminal import print_results

NASTY = "<script>alert(1)</script> & Co"


def _label(label: str, precision: float, recall: float, f1: float, support: int, ap: float) -> dict:
    return dict(label=label, precision=precision, recall=recall, f1=f1, support=support, average_precision=ap)


def _evaluation(name: str, *, macro_f1: float, p50: float, **overrides: object) -> dict:
    """A hierarchical single-label evaluation with 23 labels, the weakest being 'Shipping > Delay'."""
    evaluation = {
        "name": name,
        "kind": "static",
        "model_dir": f"runs/{name}",
        "data": "test.csv",
        "n_messages": 400,
        "multi_label": False,
        "hierarchical": True,
        "accuracy": 0.9,
        "micro_precision": 0.9,
        "micro_recall": 0.9,
        "micro_f1": 0.9,
        "macro_precision": macro_f1,
        "macro_recall": macro_f1,
        "macro_f1": macro_f1,
        "samples_f1": None,
        "per_label": [
            _label("Billing > Refund", 0.9, 0.8, 0.847, 40, 0.93),
            _label(NASTY, 0.5, 0.4, 0.444, 10, 0.51),
            _label("Shipping > Delay", 0.6, 0.35, 0.444, 3, 0.48),
            *(_label(f"Other > L{i}", 0.95, 0.95, 0.95, 20, 0.97) for i in range(20)),
        ],
        "by_level": [
            {"level": 1, "accuracy": 0.95, "micro_f1": 0.95, "macro_f1": 0.94, "n_labels": 5},
            {"level": 2, "accuracy": 0.9, "micro_f1": 0.9, "macro_f1": macro_f1, "n_labels": 23},
        ],
        "confused_pairs": [
            {"true": "Shipping > Delay", "predicted": NASTY, "count": 7},
            {"true": "Billing > Refund", "predicted": "Other > L1", "count": 3},
        ],
        "thresholds": None,
        "latency_ms_p50": p50,
        "latency_ms_p95": p50 * 1.6,
        "throughput_per_s": 1000.0 / p50,
        "peak_rss_mb": 200.0,
        "size_mb": 20.0,
        "n_params": 2_000_000,
        "threads": 2,
        "skipped_rows": 0,
        "machine": {"cpu": "AMD EPYC 7B13", "cores": 2, "instruction_sets": ["avx2", "avx512_vnni"]},
        "versions": {"textdistill": "0.1.0", "python": "3.11.7"},
    }
    return {**evaluation, **overrides}


@pytest.fixture(scope="module")
def evaluations() -> list[dict]:
    teacher = _evaluation("teacher", macro_f1=0.902, p50=24.6, accuracy=0.931, micro_f1=0.931, kind="transformer")
    teacher.update(latency_ms_p95=39.4, throughput_per_s=40.65, peak_rss_mb=1450.52, size_mb=438.2)
    teacher["n_params"] = 109_482_240
    student = _evaluation("student", macro_f1=0.884, p50=0.8213, accuracy=0.9154, micro_f1=0.9154)
    student.update(latency_ms_p95=1.314, throughput_per_s=5432.4, peak_rss_mb=180.24, size_mb=12.34)
    student["n_params"] = 1_234_567
    # slower and less accurate than the student: dominated
    wide = _evaluation("student-wide", macro_f1=0.861, p50=1.9, skipped_rows=3)
    return [teacher, student, wide]


@pytest.fixture(scope="module")
def report(evaluations: list[dict], tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return build_report(evaluations, tmp_path_factory.mktemp("report") / "out", title="Distillation & <friends>")


def _section(markdown: str, heading: str) -> str:
    """The Markdown from a heading line up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = markdown.index(heading + "\n")
    end = re.compile(rf"^#{{1,{len(level)}}} ", re.M).search(markdown, start + len(heading))
    return markdown[start : end.start() if end else None]


def test_writes_the_three_files(report: ReportFiles) -> None:
    assert [report.markdown.name, report.html.name, report.plot_svg.name] == [
        "report.md",
        "report.html",
        "quality_vs_latency.svg",
    ]
    assert all(path.is_file() and path.stat().st_size > 0 for path in (report.markdown, report.html, report.plot_svg))


def test_markdown_summary_has_a_row_per_model_with_formatted_numbers(report: ReportFiles) -> None:
    markdown = report.markdown.read_text(encoding="utf-8")
    table = _section(markdown, "## Models side by side").splitlines()
    assert table[2] == (
        "| model | role | accuracy | 95 % interval | % of teacher | Δ vs baseline (pts) | macro-F1 "
        "| ms/message (p50) | p95 ms | messages/s | peak MB | size MB | parameters |"
    )
    rows = [line for line in table[4:] if line.startswith("| ")]
    # evaluations from before roles and per-message results: roles inferred, no interval, no baseline
    assert rows == [
        "| teacher | teacher | **0.931** | — | 100.0 % | — | **0.902** | 24.6 | 39.4 | 41 | 1,450.5 | 438.2 | 109,482,240 |",
        "| student | student | 0.915 | — | 98.3 % | — | 0.884 | **0.821** | **1.31** | **5,432** | **180.2** | **12.3** | **1,234,567** |",
        "| student-wide | student | 0.900 | — | 96.7 % | — | 0.861 | 1.90 | 3.04 | 526 | 200.0 | 20.0 | 2,000,000 |",
    ]


def test_multi_label_headline_is_micro_f1_without_an_accuracy_column(tmp_path: Path) -> None:
    multi = _evaluation("multi", macro_f1=0.7, p50=2.0, accuracy=None, multi_label=True)
    multi["thresholds"] = {"mode": "per_label", "values": {}}
    multi["by_level"] = [{**level, "accuracy": None} for level in multi["by_level"]]
    markdown = build_report([multi], tmp_path).markdown.read_text(encoding="utf-8")
    table = _section(markdown, "## Models side by side")
    assert "| model | role | micro-F1 | 95 % interval |" in table and "accuracy" not in table
    assert "| multi | student | 0.900 | — | — | — | 0.700 |" in table
    assert "**Headline metric:** micro-F1" in markdown
    assert "| per\\_label |" in markdown  # thresholds mode in the data notes
    assert "| level | model | micro-F1 | macro-F1 |" in markdown  # nor per hierarchy level


def test_dominated_model_is_named_with_its_dominator(report: ReportFiles) -> None:
    sentence = (
        "student-wide (accuracy 0.900 at 1.90 ms/message) is dominated by student "
        "(accuracy 0.915 at 0.821 ms/message), which is faster and more accurate "
        "(+1.5 points, noise not assessed: no per-message results)."
    )
    for text in (report.markdown.read_text(encoding="utf-8"), report.html.read_text(encoding="utf-8")):
        assert sentence in text
        assert "teacher (accuracy 0.931 at 24.6 ms/message) is dominated" not in text
        assert "student (accuracy 0.915 at 0.821 ms/message) is dominated" not in text


def test_labels_weakest_first_and_truncated_in_markdown(report: ReportFiles) -> None:
    markdown = report.markdown.read_text(encoding="utf-8")
    section = _section(_section(markdown, "## Weakest labels (15 per model; all in report.html)"), "### teacher")
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| label")]
    assert rows[0] == "| Shipping > Delay | 0.600 | 0.350 | 0.444 | 3 | 0.480 |"  # same F1, less support
    assert rows[1].startswith("| \\<script>alert(1)\\</script> & Co |")
    assert len(rows) == 15
    assert "… and 8 more label(s), see report.html." in section

    html = report.html.read_text(encoding="utf-8")
    assert html.count("<details") == 3 and html.count("<details open>") == 1
    assert html.index("<details open>") == html.index("<details")
    assert html.count("Other &gt; L19") == 3  # every label is in the HTML


def test_label_text_is_escaped(report: ReportFiles) -> None:
    html = report.html.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html
    assert "<title>Distillation &amp; &lt;friends&gt;</title>" in html
    assert "\\<script>alert(1)\\</script> & Co" in report.markdown.read_text(encoding="utf-8")


def test_html_is_self_contained(report: ReportFiles) -> None:
    html = report.html.read_text(encoding="utf-8")
    assert html.count("<svg") == 1 and "<?xml" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "<link" not in html and "<img" not in html


def test_other_sections(report: ReportFiles) -> None:
    markdown = report.markdown.read_text(encoding="utf-8")
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Summary",
        "## Models side by side",
        "## Quality vs latency",
        "## Measurement conditions",
        "## Scores per hierarchy level",
        "## Weakest labels (15 per model; all in report.html)",
        "## Most confused label pairs (top 10)",
        "## Data notes",
        "## Machine & versions",
    ]
    assert "| 1 | teacher | 0.950 | 0.950 | 0.940 |" in markdown
    assert "| Shipping > Delay | \\<script>alert(1)\\</script> & Co | 7 |" in markdown
    assert "> **Warning:** student-wide: 3 row(s) of test.csv were skipped" in markdown
    # one row per distinct machine and package version, not one per model
    assert "| all | AMD EPYC 7B13 | 2 | avx2, avx512\\_vnni | 2 |" in markdown
    assert "| textdistill | 0.1.0 | all |" in markdown and markdown.count("| AMD EPYC 7B13 |") == 1
    assert '<p class="warning" role="alert">⚠ student-wide: 3 row(s)' in report.html.read_text(encoding="utf-8")


@pytest.mark.parametrize("latencies", [[1.5], [1.0, 1.0, 1.0]], ids=["one model", "equal latency"])
def test_plot_has_one_marker_per_model(tmp_path: Path, latencies: list[float]) -> None:
    models = [_evaluation(f"m{i}", macro_f1=0.8 + 0.01 * i, p50=p50) for i, p50 in enumerate(latencies)]
    svg = build_report(models, tmp_path).plot_svg.read_text(encoding="utf-8")
    assert sorted(re.findall(r'id="(td-point-\d+)"', svg)) == [f"td-point-{i}" for i in range(len(models))]


def test_model_names_are_plain_text_in_the_plot(tmp_path: Path) -> None:
    svg = build_report([_evaluation("a <b> & $5 or $6", macro_f1=0.8, p50=1.0)], tmp_path).plot_svg.read_text()
    assert "a &lt;b&gt; &amp; $5 or $6" in svg  # escaped, and not parsed as TeX math


# --- roles, the headline metric and its noise (the demo's situation: a weak teacher) -------------

N_TEST = 1000


def _flags(n_wrong: int, *, more_wrong_than: np.ndarray | None = None, extra: int = 0) -> np.ndarray:
    """Per-message correct flags: ``n_wrong`` wrong at fixed positions, or ``extra`` more wrong than ``more_wrong_than``."""
    if more_wrong_than is None:
        correct = np.ones(N_TEST, dtype=int)
        correct[np.random.default_rng(1).choice(N_TEST, n_wrong, replace=False)] = 0
        return correct
    correct = more_wrong_than.copy()
    correct[np.flatnonzero(correct)[:extra]] = 0
    return correct


def _scored(name: str, correct: np.ndarray, *, p50: float, role: str, **fields: object) -> dict:
    """An evaluation with per-message results, as `textdistill evaluate` writes it."""
    accuracy = float(correct.mean())
    evaluation = _evaluation(name, macro_f1=accuracy - 0.02, p50=p50, accuracy=accuracy, micro_f1=accuracy, role=role, **fields)
    evaluation.update(
        model_dir=f"/runs/demo/models/{name}",
        n_messages=N_TEST,
        test_sha256="same-test-set",
        per_message={"metric": "accuracy", "correct": "".join(map(str, correct))},
        settings={"latency_samples": 200, "warmup": 20, "throughput_batch_size": 256, "throughput_messages": 2048, "repeats": 3},
        load_average={"before": [0.52, 0.4, 0.3], "after": [1.25, 0.6, 0.35]},
    )
    return evaluation


@pytest.fixture(scope="module")
def demo() -> list[dict]:
    """Baseline 0.932, teacher 0.903 (weak), students below both, an int8 copy one message off its source;
    in alphabetical order, as a run directory lists them."""
    baseline = _flags(68)
    teacher = _flags(0, more_wrong_than=baseline, extra=29)
    static = _flags(0, more_wrong_than=teacher, extra=12)
    return [
        _scored("baseline", baseline, p50=0.3, role="baseline", kind="baseline", description="TF-IDF + linear classifier"),
        _scored("bilstm", _flags(0, more_wrong_than=static, extra=30), p50=2.0, role="student", kind="bilstm", teacher="teacher"),
        _scored("static", static, p50=0.05, role="student", kind="static", teacher="teacher", description="static student"),
        _scored(
            "static-int8", _flags(0, more_wrong_than=static, extra=1), p50=0.045, role="compressed", kind="onnx", source="static",
            compression={"precision": "int8", "source": "/runs/demo/models/static", "source_kind": "static"},
        ),
        _scored(
            "teacher", teacher, p50=24.0, role="teacher", kind="transformer", description="bert-base-uncased, full fine-tuning",
            teacher_check={"metric": "accuracy", "teacher": 0.901, "baseline": 0.929, "teacher_is_better": False},
            latency_by_length=[
                {"quartile": q, "min_chars": 40 * q, "max_chars": 40 * q + 39, "n": 250, "p50_ms": 20.0 + q, "p95_ms": 30.0 + q} for q in range(1, 5)
            ],
            text_cleaning={"messages": 1000, "chars_before_p50": 812.0, "chars_before_p95": 4210.0, "chars_after_p50": 301.0, "chars_after_p95": 960.0},
        ),
    ]


@pytest.fixture(scope="module")
def demo_report(demo: list[dict], tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return build_report(demo, tmp_path_factory.mktemp("demo"), title="Demo")


def _summary_rows(markdown: str) -> list[list[str]]:
    lines = [line for line in _section(markdown, "## Models side by side").splitlines() if line.startswith("| ")]
    return [[cell.strip().strip("*") for cell in line.strip("|").split(" | ")] for line in lines[1:]]


def test_rows_are_grouped_by_role_with_copies_under_their_source(demo_report: ReportFiles) -> None:
    rows = _summary_rows(demo_report.markdown.read_text(encoding="utf-8"))
    assert [(row[0], row[1]) for row in rows] == [
        ("baseline", "baseline"),
        ("teacher", "teacher"),
        ("bilstm", "student"),
        ("static", "student"),
        ("static-int8", "int8 copy of static"),
    ]


def test_share_of_teacher_and_change_against_the_baseline(demo_report: ReportFiles) -> None:
    rows = {row[0]: row for row in _summary_rows(demo_report.markdown.read_text(encoding="utf-8"))}
    assert [rows["static"][i] for i in (2, 4, 5)] == ["0.891", "98.7 %", "-4.1"]
    assert rows["teacher"][4] == "100.0 %" and rows["baseline"][5] == "—"
    assert rows["static-int8"][5] == "-4.2"  # 42 messages fewer right than the baseline: outside the noise


def test_intervals_are_bootstrap_intervals_around_the_value(demo_report: ReportFiles) -> None:
    for row in _summary_rows(demo_report.markdown.read_text(encoding="utf-8")):
        value = float(row[2])
        low, high = map(float, row[3].split("–"))
        # a binomial proportion's 95 % interval is about ±1.96 sqrt(p (1 - p) / n)
        half_width = 1.96 * (value * (1 - value) / N_TEST) ** 0.5
        assert low < value < high
        assert abs((high - low) / 2 - half_width) < 0.004, row


def test_noise_decides_dominance(demo_report: ReportFiles) -> None:
    markdown = demo_report.markdown.read_text(encoding="utf-8")
    sentences = [line[2:] for line in _section(markdown, "## Quality vs latency").splitlines() if line.startswith("- ")]
    assert any(s.startswith("bilstm (accuracy 0.861 at 2.00 ms/message) is dominated by baseline") for s in sentences)
    assert any(s.startswith("teacher (accuracy 0.903 at 24.0 ms/message) is dominated by baseline") for s in sentences)
    # one message apart: neither dominates the other, and the report says the difference is noise
    assert not any(s.startswith(("static (", "static-int8 (")) and " is dominated" in s for s in sentences)
    assert any(
        s.startswith("static (accuracy 0.891 at 0.0500 ms/message) is slower than static-int8 (accuracy 0.890 at 0.0450 ms/message)")
        and s.endswith("within noise).")
        for s in sentences
    )


def test_summary_box_verdict_and_weak_teacher_warning(demo_report: ReportFiles) -> None:
    markdown = demo_report.markdown.read_text(encoding="utf-8")
    box = _section(markdown, "## Summary")
    assert "**Data:** 1,000 test messages (test.csv); 23 labels, single-label." in box
    assert "**Teacher:** teacher: bert-base-uncased, full fine-tuning." in box
    assert "**Students:** bilstm, static (static student), static-int8." in box
    assert "**Verdict:** The static student keeps 98.7 % of the teacher's accuracy at 1/480 of its latency; it is worse than the TF-IDF baseline (-4.1 points, 95 % interval" in box
    assert "> **Warning:** Weak teacher: on the validation data its accuracy is 0.901, the TF-IDF baseline's 0.929." in box
    assert "On the test data the teacher (accuracy 0.903) is worse than the TF-IDF baseline (0.932)" in box
    html = demo_report.html.read_text(encoding="utf-8")
    assert html.count('<p class="warning" role="alert">⚠ ') == 2
    assert html.index('id="summary-box"') < html.index("Weak teacher") < html.index('id="summary"')


def test_the_console_table_has_the_reports_rows_in_80_columns(demo: list[dict], demo_report: ReportFiles) -> None:
    out = io.StringIO()
    print_results(Console(file=out, width=80, markup=False), demo)
    lines = out.getvalue().splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[0].split() == ["model", "role", "accuracy", "95", "%", "interval", "%", "of", "teacher", "ms/msg"]
    # the report's rows, in its order: name, role, headline metric, interval, % of teacher, ms/message (p50)
    markdown = demo_report.markdown.read_text(encoding="utf-8")
    header_line = next(line for line in _section(markdown, "## Models side by side").splitlines() if line.startswith("| model"))
    header = [cell.strip() for cell in header_line.strip("|").split(" | ")]
    columns = [header.index(title) for title in ("model", "role", "accuracy", "95 % interval", "% of teacher", "ms/message (p50)")]
    report_rows = [[row[i] for i in columns] for row in _summary_rows(markdown)]
    table_rows = [re.split(r"\s{2,}", line.strip()) for line in lines[2 : 2 + len(demo)]]
    assert table_rows == report_rows
    assert [row[0] for row in table_rows] == ["baseline", "teacher", "bilstm", "static", "static-int8"]
    after = " ".join(" ".join(lines[2 + len(demo) :]).split())
    assert after.startswith("The static student keeps 98.7 % of the teacher's accuracy at 1/480 of its latency")
    assert "Warning: Weak teacher" in after and "distillation does not pay here." in after


def test_measurement_conditions_and_the_other_engineers_fields(demo_report: ReportFiles) -> None:
    markdown = demo_report.markdown.read_text(encoding="utf-8")
    conditions = _section(markdown, "## Measurement conditions")
    assert "Measured on AMD EPYC 7B13 (2 logical cores)." in conditions
    assert "| static | 2 | batch 1, 200 calls after 20 warm-up | batch 256, 2,048 messages × 3 | 0.52, 0.40, 0.30 → 1.25, 0.60, 0.35 |" in conditions
    assert "busy machine" not in conditions
    assert "| teacher | 3 | 120–159 | 250 | 23.0 | 33.0 |" in _section(markdown, "### Latency by message length")
    assert "| teacher | 1,000 | 812 | 4,210 | 301 | 960 |" in _section(markdown, "### Text clean-up")
    assert "int8 weights (one byte instead of four)" in _section(markdown, "## Models side by side")


def test_a_busy_machine_is_called_out(demo: list[dict], tmp_path: Path) -> None:
    busy = {**demo[0], "load_average": {"before": [1.8, 1.0, 0.9], "after": [2.4, 1.2, 1.0]}}
    markdown = build_report([busy, demo[1]], tmp_path).markdown.read_text(encoding="utf-8")
    conditions = _section(markdown, "## Measurement conditions")
    assert "> **Warning:** Measured on a busy machine (1-minute load average at or above the core count): baseline (2.40 on 2 cores)." in conditions
    assert "bilstm (" not in conditions  # 1.25 on 2 cores


def test_old_evaluations_have_no_conditions_by_length_or_clean_up(report: ReportFiles) -> None:
    markdown = report.markdown.read_text(encoding="utf-8")
    assert "### Latency by message length" not in markdown and "### Text clean-up" not in markdown
    assert "| teacher | 2 | batch 1 | — | — |" in markdown
    assert "Compressed copies:" not in markdown


def test_two_class_headline_is_the_positive_class_f1(tmp_path: Path) -> None:
    positive = {"label": "spam", "chosen": "rarer class", "precision": 0.8, "recall": 0.6, "f1": 0.686, "support": 50, "average_precision": 0.7}
    spam = _evaluation("spam-filter", macro_f1=0.8, p50=1.0, accuracy=0.95, positive_class=positive)
    markdown = build_report([spam], tmp_path).markdown.read_text(encoding="utf-8")
    assert "| model | role | positive-class F1 | 95 % interval | % of teacher | Δ vs baseline (pts) | accuracy | macro-F1 |" in markdown
    assert "| spam-filter | student | 0.686 | — | — | — | 0.950 | 0.800 |" in markdown


def test_noise_pairs_models_over_the_same_resamples() -> None:
    one_apart = [_flags(100), _flags(0, more_wrong_than=_flags(100), extra=1)]
    far_apart = [one_apart[0], _flags(0, more_wrong_than=one_apart[0], extra=40)]
    for models, sign in ((one_apart, 0), (far_apart, 1)):
        evaluations = [_scored(f"m{i}", correct, p50=1.0, role="student") for i, correct in enumerate(models)]
        analysis = Analysis(evaluations)
        difference = analysis.difference(0, 1)
        assert difference.value == pytest.approx(models[0].mean() - models[1].mean())
        assert difference.sign == sign, difference
    # a different test set is never paired
    other = _scored("other", far_apart[1], p50=1.0, role="student", test_sha256="another")
    other["test_sha256"] = "another"
    assert not Analysis([evaluations[0], other]).difference(0, 1).assessed


# --- collecting evaluation files ---------------------------------------------------------------


def _write(path: Path, evaluation: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(evaluation), encoding="utf-8")
    return path


def test_collect_reads_run_dirs_folders_and_files(tmp_path: Path) -> None:
    _write(tmp_path / "run" / "evaluations" / "b.json", _evaluation("student", macro_f1=0.8, p50=1.0))
    _write(tmp_path / "run" / "evaluations" / "a.json", _evaluation("teacher", macro_f1=0.9, p50=20.0))
    single = _write(tmp_path / "single.json", _evaluation("tiny", macro_f1=0.7, p50=0.3))
    _write(tmp_path / "folder" / "x.json", _evaluation("other", macro_f1=0.6, p50=0.5))

    evaluations = collect_evaluations([tmp_path / "run", str(single), tmp_path / "folder"])
    assert [ev["name"] for ev in evaluations] == ["teacher", "student", "tiny", "other"]
    assert evaluations[0]["latency_ms_p50"] == 20.0
    # the evaluations/ folder itself works too, and a file reached twice is read once
    assert len(collect_evaluations([tmp_path / "run" / "evaluations", tmp_path / "run"])) == 2


def test_collect_rejects_missing_keys_naming_the_file(tmp_path: Path) -> None:
    bad = _write(tmp_path / "evaluations" / "broken.json", {"name": "x", "accuracy": None, "per_label": []})
    with pytest.raises(ValueError) as error:
        collect_evaluations([tmp_path])
    message = str(error.value)
    assert str(bad) in message
    assert "missing keys: macro_f1, latency_ms_p50\n" in message
    assert "textdistill evaluate" in message and "--json" in message


def test_collect_disambiguates_duplicate_names(tmp_path: Path) -> None:
    for run in ("run1", "run2"):
        _write(tmp_path / run / "evaluations" / "baseline.json", _evaluation("baseline", macro_f1=0.8, p50=1.0))
    _write(tmp_path / "run2" / "evaluations" / "student.json", _evaluation("student", macro_f1=0.8, p50=1.0))
    names = [ev["name"] for ev in collect_evaluations([tmp_path / "run1", tmp_path / "run2"])]
    assert names == ["baseline (run1)", "baseline (run2)", "student"]


def test_collect_says_where_it_looked_when_nothing_is_found(tmp_path: Path) -> None:
    (tmp_path / "empty" / "evaluations").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no evaluation JSON files found in .*empty.evaluations"):
        collect_evaluations([tmp_path / "empty"])
    with pytest.raises(ValueError, match="no such file or directory"):
        collect_evaluations([tmp_path / "missing"])


# --- the page as a browser renders it ------------------------------------------------------------


class _PageProbe(HTMLParser):
    """Counts the summary table's body rows and the marker elements in each ``td-point-*`` SVG group;
    collects the summary table's header and body cells, the summary box's text, the error-bar
    groups and the labels of the figures' SVG images."""

    def __init__(self) -> None:
        super().__init__()
        self.summary_rows = 0
        self.summary_header: list[str] = []
        self.summary_cells: list[list[str]] = []
        self.figure_images: list[str] = []
        self._in_cell = False
        self._in_figure = False
        self.box_text = ""
        self.intervals: dict[str, int] = {}
        self.markers: dict[str, int] = {}
        self._in_box = 0
        self._in_header = False
        self._table: list[str | None] = []  # ids of open tables
        self._in_tbody = False
        self._groups: list[str | None] = []  # ids of open SVG groups
        self._defs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element_id = dict(attrs).get("id")
        if element_id == "summary-box" or (self._in_box and tag == "section"):
            self._in_box += 1
        if tag == "th" and self._table[-1:] == ["summary"]:
            self._in_header = True
            self.summary_header.append("")
        if tag == "td" and self._in_tbody and self._table[-1:] == ["summary"]:
            self._in_cell = True
            self.summary_cells[-1].append("")
        if tag == "figure":
            self._in_figure = True
        elif tag == "svg" and self._in_figure:
            self.figure_images.append(dict(attrs).get("aria-label") or "")
        if tag == "table":
            self._table.append(element_id)
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody and self._table[-1:] == ["summary"]:
            self.summary_rows += 1
            self.summary_cells.append([])
        elif tag == "g":
            self._groups.append(element_id)
            if element_id and element_id.startswith("td-point-"):
                self.markers[element_id] = 0
            if element_id and element_id.startswith("td-interval-"):
                self.intervals[element_id] = 0
        elif tag == "defs":
            self._defs += 1
        elif tag in ("use", "path") and not self._defs:
            point = next((g for g in self._groups if g and g.startswith("td-point-")), None)
            if point:
                self.markers[point] += 1
            interval = next((g for g in self._groups if g and g.startswith("td-interval-")), None)
            if interval:
                self.intervals[interval] += 1

    def handle_data(self, data: str) -> None:
        if self._in_box:
            self.box_text += data
        if self._in_header:
            self.summary_header[-1] += data
        if self._in_cell:
            self.summary_cells[-1][-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._in_box:
            self._in_box -= 1
        if tag == "th":
            self._in_header = False
        if tag == "td":
            self._in_cell = False
        if tag == "figure":
            self._in_figure = False
        if tag == "table":
            self._table.pop()
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "g":
            self._groups.pop()
        elif tag == "defs":
            self._defs -= 1


def _chromium(binary: str, profile: Path, *args: str) -> str:
    """Headless Chromium's stdout, with background networking off; kills its process group on timeout."""
    flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
    flags += " --disable-component-update --disable-sync"
    command = [binary, *flags.split(), f"--user-data-dir={profile}", *args]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish within 60 s: {' '.join(command)}")
    assert process.returncode == 0, stderr[-2000:]
    return stdout


def test_page_renders_in_headless_chromium(demo_report: ReportFiles, demo: list[dict], tmp_path: Path) -> None:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("no `chromium` binary on PATH: cannot render the HTML report in a browser")
    url = demo_report.html.resolve().as_uri()

    probe = _PageProbe()
    probe.feed(_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url))
    assert probe.summary_rows == len(demo)
    assert probe.summary_header[:6] == ["model", "role", "accuracy", "95 % interval", "% of teacher", "Δ vs baseline (pts)"]
    assert "Verdict" in probe.box_text and "keeps 98.7 % of the teacher's accuracy" in probe.box_text
    # the role column, and each headline value with an interval around it
    assert [row[1] for row in probe.summary_cells] == ["baseline", "teacher", "student", "student", "int8 copy of static"]
    for row in probe.summary_cells:
        low, high = (float(end) for end in row[3].split("–"))
        assert low < float(row[2]) < high, row
    assert probe.figure_images == ["accuracy against ms/message"]  # the plot, inline
    assert probe.markers == {f"td-point-{i}": 1 for i in range(len(demo))}
    # every model has an error bar (a vertical line and two caps)
    assert sorted(probe.intervals) == sorted(f"td-interval-{i}" for i in range(len(demo)))
    assert all(count >= 1 for count in probe.intervals.values())

    shot = tmp_path / "shot.png"
    _chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert shot.is_file()
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05, "the screenshot is blank"
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.005, "the screenshot has almost no dark (text) pixels"


def test_micro_f1_counts_above_nine_are_read() -> None:
    """Multi-label counts are space-separated once one exceeds 9; the interval then still brackets the value."""
    multi = _evaluation("multi", macro_f1=0.6, p50=1.0, accuracy=None, multi_label=True, micro_f1=2 * 22 / (2 * 22 + 3 + 5), n_messages=4)
    multi["per_message"] = {"metric": "micro_f1", "tp": "12 4 3 3", "fp": "0 1 1 1", "fn": "2 1 1 1"}
    low, high = Analysis([multi]).noise.interval(0)
    assert low <= multi["micro_f1"] <= high and high - low > 0
