"""Side-by-side report of evaluated models: tables, a quality-vs-latency plot, per-label detail."""

from textdistill.evaluate.report.build import ReportFiles, build_report
from textdistill.evaluate.report.collect import collect_evaluations

__all__ = ["ReportFiles", "build_report", "collect_evaluations"]
