"""The report as Markdown (GitHub-flavoured tables), next to its plot file."""

from __future__ import annotations

import re

from textdistill.evaluate.report import tables
from textdistill.evaluate.report.analysis import Analysis
from textdistill.evaluate.report.noise import RESAMPLES
from textdistill.evaluate.report.tables import Table

_SPECIAL = re.compile(r"([\\`*_\[\]<|])")


def escape(text: str) -> str:
    """Text made literal in Markdown: one line, with characters that start markup or tags backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def render_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table; bold cells wrapped in ``**``."""

    def cell(r: int, c: int, text: str) -> str:
        return f"**{escape(text)}**" if (r, c) in table.bold else escape(text)

    lines = [
        "| " + " | ".join(map(escape, table.header)) + " |",
        "|" + "|".join("---:" if numeric else ":---" for numeric in table.numeric) + "|",
    ]
    for r, row in enumerate(table.rows):
        lines.append("| " + " | ".join(cell(r, c, text) for c, text in enumerate(row)) + " |")
    return "\n".join(lines)


def render_markdown(analysis: Analysis, *, title: str, plot_file: str) -> str:
    """The whole report; ``plot_file`` is the plot's path relative to the Markdown file."""
    evaluations = analysis.evaluations
    out = [f"# {escape(title)}", "", f"{len(evaluations)} model(s) compared.", ""]

    out += ["## Summary", ""]
    out += [f"- **{escape(heading)}:** {escape(text)}" for heading, text in tables.summary_box(analysis)]
    out.append("")
    out += [f"> **Warning:** {escape(w)}\n" for w in analysis.weak_teacher_warnings()]

    if rated := [ev for ev in evaluations if ev.get("rating")]:
        out += ["## Model rating", "", escape(tables.RATING_NOTE), ""]
        for ev in rated:
            out += [f"### {escape(tables.rating_heading(ev))}", "", render_table(tables.rating_table(ev)), ""]
            out += [f"> **Warning:** {escape(w)}\n" for w in ev["rating"].get("warnings") or []]

    out += ["## Models side by side", "", render_table(tables.summary_table(analysis)), ""]
    out += [escape(tables.BEST_NOTE.format(resamples=RESAMPLES)), ""]
    if any(ev["role"] == "compressed" for ev in evaluations):
        out += [escape(tables.COMPRESSED_NOTE), ""]

    out += ["## Quality vs latency", "", f"![{escape(analysis.title)} against ms/message]({plot_file})", ""]
    sentences = tables.dominance_sentences(analysis)
    out += [f"- {escape(s)}" for s in sentences] or [tables.ALL_ON_FRONT]
    if missing := tables.unplotted(analysis):
        out += ["", f"Not plotted (no {escape(analysis.title)} or latency): {escape(', '.join(missing))}."]
    out.append("")

    if conditions := tables.conditions_table(evaluations):
        out += ["## Measurement conditions", "", escape(tables.CONDITIONS_NOTE), "", escape(tables.machines_measured_on(evaluations)), "", render_table(conditions), ""]
        out += [f"> **Warning:** {escape(w)}\n" for w in tables.load_warnings(evaluations)]
        if by_length := tables.latency_by_length_table(evaluations):
            out += ["### Latency by message length", "", render_table(by_length), ""]

    if positive := tables.positive_class_table(evaluations):
        out += ["## Positive class", "", escape(tables.POSITIVE_CLASS_NOTE), "", render_table(positive), ""]

    if levels := tables.level_table(evaluations):
        out += ["## Scores per hierarchy level", "", render_table(levels), ""]

    early_exit = [(ev, table) for ev in evaluations if (table := tables.early_exit_table(ev))]
    if early_exit:
        out += ["## Early exit", "", escape(tables.EARLY_EXIT_NOTE), ""]
        for ev, table in early_exit:
            out += [f"### {escape(tables.early_exit_heading(ev))}", "", render_table(table), ""]

    if compression := tables.compression_table(evaluations):
        out += ["## Compression", "", escape(tables.COMPRESSION_NOTE), "", render_table(compression), ""]

    out += [f"## Weakest labels ({tables.MARKDOWN_LABELS} per model; all in report.html)", ""]
    for ev in evaluations:
        labels = tables.weakest_labels(ev)
        shown = render_table(tables.label_table(labels[: tables.MARKDOWN_LABELS])) if labels else tables.NO_LABELS
        out += [f"### {escape(ev['name'])}", "", shown, ""]
        if len(labels) > tables.MARKDOWN_LABELS:
            out += [f"… and {len(labels) - tables.MARKDOWN_LABELS:,} more label(s), see report.html.", ""]

    automated = [ev for ev in evaluations if ev.get("automation")]
    if automated:
        out += ["## Automation thresholds", "", escape(tables.AUTOMATION_NOTE), ""]
        for ev in automated:
            out += [f"### {escape(tables.automation_heading(ev))}", "", render_table(tables.automation_table(ev, tables.MARKDOWN_LABELS)), ""]
            if len(ev["automation"]["labels"]) > tables.MARKDOWN_LABELS:
                out += [f"… and {len(ev['automation']['labels']) - tables.MARKDOWN_LABELS:,} more label(s), see report.html.", ""]

    if rejecting := tables.out_of_scope_table(evaluations):
        out += ["## Out of scope", "", escape(tables.OUT_OF_SCOPE_NOTE), "", render_table(rejecting), ""]

    out += [f"## Most confused label pairs (top {tables.TOP_CONFUSIONS})", ""]
    for ev in evaluations:
        confusions = tables.confusion_table(ev)
        out += [f"### {escape(ev['name'])}", "", render_table(confusions) if confusions else tables.NO_CONFUSIONS, ""]

    out += ["## Data notes", "", render_table(tables.data_table(evaluations)), ""]
    if cleaning := tables.text_cleaning_table(evaluations):
        out += ["### Text clean-up", "", render_table(cleaning), ""]
    out += [f"> **Warning:** {escape(w)}\n" for w in tables.data_warnings(evaluations)]

    out += ["## Machine & versions", "", render_table(tables.machine_table(evaluations)), ""]
    if versions := tables.versions_table(evaluations):
        out += [render_table(versions), ""]
    return "\n".join(out)
