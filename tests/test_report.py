"""The side-by-side report: collecting evaluations, Markdown/HTML/SVG content, the page as Chromium renders it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.image import imread

from textdistill.evaluate.report import ReportFiles, build_report, collect_evaluations

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
    markdown = build_report([multi], tmp_path).markdown.read_text(encoding="utf-8")
    table = _section(markdown, "## Models side by side")
    assert "| model | role | micro-F1 | 95 % interval |" in table and "accuracy" not in table
    assert "| multi | student | 0.900 | — | — | — | 0.700 |" in table
    assert "**Headline metric:** micro-F1" in markdown
    assert "| per\\_label |" in markdown  # thresholds mode in the data notes


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
    """Counts the summary table's body rows and the marker elements in each ``td-point-*`` SVG group."""

    def __init__(self) -> None:
        super().__init__()
        self.summary_rows = 0
        self.markers: dict[str, int] = {}
        self._table: list[str | None] = []  # ids of open tables
        self._in_tbody = False
        self._groups: list[str | None] = []  # ids of open SVG groups
        self._defs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element_id = dict(attrs).get("id")
        if tag == "table":
            self._table.append(element_id)
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody and self._table[-1:] == ["summary"]:
            self.summary_rows += 1
        elif tag == "g":
            self._groups.append(element_id)
            if element_id and element_id.startswith("td-point-"):
                self.markers[element_id] = 0
        elif tag == "defs":
            self._defs += 1
        elif tag in ("use", "path") and not self._defs:
            point = next((g for g in self._groups if g and g.startswith("td-point-")), None)
            if point:
                self.markers[point] += 1

    def handle_endtag(self, tag: str) -> None:
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


def test_page_renders_in_headless_chromium(report: ReportFiles, evaluations: list[dict], tmp_path: Path) -> None:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("no `chromium` binary on PATH: cannot render the HTML report in a browser")
    url = report.html.resolve().as_uri()

    probe = _PageProbe()
    probe.feed(_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url))
    assert probe.summary_rows == len(evaluations)
    assert probe.markers == {f"td-point-{i}": 1 for i in range(len(evaluations))}

    shot = tmp_path / "shot.png"
    _chromium(binary, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert shot.is_file()
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05, "the screenshot is blank"
    assert (pixels.mean(axis=2) < 0.5).mean() > 0.005, "the screenshot has almost no dark (text) pixels"
