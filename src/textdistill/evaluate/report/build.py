"""Write the report files: Markdown, a self-contained HTML page and the plot as SVG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textdistill.evaluate.report.analysis import Analysis
from textdistill.evaluate.report.html import render_html
from textdistill.evaluate.report.markdown import render_markdown
from textdistill.evaluate.report.plot import render_plot


@dataclass(frozen=True)
class ReportFiles:
    """Paths of the files a report consists of."""

    markdown: Path
    html: Path
    plot_svg: Path


def build_report(evaluations: list[dict], out_dir: str | Path, *, title: str = "textdistill report") -> ReportFiles:
    """Write ``report.md``, ``report.html`` and ``quality_vs_latency.svg`` into ``out_dir`` (created if needed).

    ``evaluations`` are evaluation dicts as returned by ``collect_evaluations``; the report shows
    them grouped by role (baseline, teacher, students with their compressed copies), in the
    given order within each group.
    """
    if not evaluations:
        raise ValueError(
            "no evaluations to report on\n  What to do: pass at least one `textdistill evaluate ... --json` result."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out / "report.md", out / "report.html", out / "quality_vs_latency.svg")
    analysis = Analysis(evaluations)
    svg = render_plot(analysis)
    files.plot_svg.write_text(svg, encoding="utf-8")
    markdown = render_markdown(analysis, title=title, plot_file=files.plot_svg.name)
    files.markdown.write_text(markdown, encoding="utf-8")
    files.html.write_text(render_html(analysis, title=title, svg=svg), encoding="utf-8")
    return files
