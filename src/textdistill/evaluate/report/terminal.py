"""The report's summary, short enough for a terminal: printed at the end of ``run`` and ``demo``."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from textdistill.evaluate.report import tables
from textdistill.evaluate.report.analysis import Analysis

# Columns of the report's summary table kept on the terminal (None: the headline metric), and their headers there.
_COLUMNS = (("model", "model"), ("role", "role"), (None, None), ("95 % interval", "95 % interval"), ("% of teacher", "% of teacher"), ("ms/message (p50)", "ms/msg"))


def results_table(analysis: Analysis) -> RichTable:
    """The report's summary rows (same order, same numbers, best values in bold) with the
    columns that fit 80 characters: model, role, headline metric, its interval, % of the
    teacher's, ms per message at batch 1."""
    summary = tables.summary_table(analysis)
    picked = [(summary.header.index(key or analysis.title), title or analysis.title) for key, title in _COLUMNS]
    table = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True, header_style="bold")
    for c, title in picked:
        table.add_column(title, justify="right" if summary.numeric[c] else "left")
    for r, row in enumerate(summary.rows):
        table.add_row(*(Text(row[c], style="bold" if (r, c) in summary.bold else "") for c, _ in picked))
    return table


def print_results(console: Console, evaluations: list[dict]) -> None:
    """The results table, then the verdict and the warnings of the report's summary box."""
    analysis = Analysis(evaluations)
    console.print(results_table(analysis))
    if verdict := analysis.verdict():
        console.print(Text(verdict[0].upper() + verdict[1:]), soft_wrap=False)
    for warning in analysis.weak_teacher_warnings():
        console.print(Text(f"Warning: {warning}", style="yellow"), soft_wrap=False)
