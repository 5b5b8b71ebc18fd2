"""The report as one self-contained HTML page: inline CSS and the plot inlined as ``<svg>``."""

from __future__ import annotations

from html import escape

from textdistill.evaluate.report import tables
from textdistill.evaluate.report.analysis import Analysis
from textdistill.evaluate.report.noise import RESAMPLES
from textdistill.evaluate.report.plot import render_pr_curves
from textdistill.evaluate.report.tables import Table

# No scripts, no network: the page only needs its own inline styles.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; }
.lead { color: #59636e; margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.6em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e1e4e8; text-align: left; vertical-align: top; }
#summary { font-size: 14px; }
#summary td:first-child { white-space: nowrap; }
th { background: #f6f8fa; font-weight: 600; }
th.num, td.num { text-align: right; }
td.num { white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
td strong { color: #0a5c2b; }
figure { margin: 1em 0; }
figure svg { width: 100%; height: auto; }
.summary { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.6em 1em; margin: 1em 0; }
.summary dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25em 1em; margin: 0; }
.summary dt { font-weight: 600; }
.summary dd { margin: 0; }
details { margin: 0.5em 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.3em 0.8em; }
summary { cursor: pointer; font-weight: 600; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 0.5em 0.8em; }
.muted { color: #59636e; }
"""


def render_table(table: Table, table_id: str | None = None) -> str:
    """An HTML table with escaped cells; bold cells in ``<strong>``, numeric columns right-aligned."""

    def cell(tag: str, r: int, c: int, text: str) -> str:
        inner = f"<strong>{escape(text)}</strong>" if (r, c) in table.bold else escape(text)
        return f'<{tag} class="num">{inner}</{tag}>' if table.numeric[c] else f"<{tag}>{inner}</{tag}>"

    head = "".join(cell("th", -1, c, text) for c, text in enumerate(table.header))
    body = "\n".join(
        "<tr>" + "".join(cell("td", r, c, text) for c, text in enumerate(row)) + "</tr>"
        for r, row in enumerate(table.rows)
    )
    id_attr = f' id="{escape(table_id)}"' if table_id else ""
    return (
        f'<div class="scroll"><table{id_attr}>\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _muted(text: str) -> str:
    return f'<p class="muted">{escape(text)}</p>'


def _inline_svg(svg: str, label: str) -> str:
    """The ``<svg>`` element of an SVG document, without its XML prolog, labelled for screen readers."""
    element = svg[svg.index("<svg") :]
    return element.replace("<svg", f'<svg role="img" aria-label="{escape(label)}"', 1)


def _warning(text: str) -> str:
    return f'<p class="warning" role="alert">⚠ {escape(text)}</p>'


def render_html(analysis: Analysis, *, title: str, svg: str) -> str:
    """The whole report as one page; ``svg`` is the plot as an SVG document."""
    evaluations = analysis.evaluations
    out = [f"<h1>{escape(title)}</h1>", f'<p class="lead">{len(evaluations)} model(s) compared.</p>']

    box = "".join(f"<dt>{escape(heading)}</dt><dd>{escape(text)}</dd>" for heading, text in tables.summary_box(analysis))
    out.append(f'<section class="summary" id="summary-box" aria-label="Summary"><dl>{box}</dl></section>')
    out += [_warning(w) for w in analysis.weak_teacher_warnings()]

    if rated := [ev for ev in evaluations if ev.get("rating")]:
        out += ['<section id="rating"><h2>Model rating</h2>', _muted(tables.RATING_NOTE)]
        for ev in rated:
            out += [f"<h3>{escape(tables.rating_heading(ev))}</h3>", render_table(tables.rating_table(ev))]
            out += [_warning(w) for w in ev["rating"].get("warnings") or []]
        out.append("</section>")

    out += ['<section><h2>Models side by side</h2>', render_table(tables.summary_table(analysis), "summary")]
    out.append(_muted(tables.BEST_NOTE.format(resamples=RESAMPLES)))
    if any(ev["role"] == "compressed" for ev in evaluations):
        out.append(_muted(tables.COMPRESSED_NOTE))
    out.append("</section>")

    label = f"{analysis.title} against ms/message"
    out += ['<section><h2>Quality vs latency</h2>', f"<figure>{_inline_svg(svg, label)}</figure>"]
    sentences = tables.dominance_sentences(analysis)
    if sentences:
        out.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in sentences) + "</ul>")
    else:
        out.append(f"<p>{escape(tables.ALL_ON_FRONT)}</p>")
    if missing := tables.unplotted(analysis):
        out.append(_muted(f"Not plotted (no {analysis.title} or latency): {', '.join(missing)}."))
    out.append("</section>")

    if conditions := tables.conditions_table(evaluations):
        out += ["<section><h2>Measurement conditions</h2>", _muted(tables.CONDITIONS_NOTE), _muted(tables.machines_measured_on(evaluations)), render_table(conditions, "conditions")]
        out += [_warning(w) for w in tables.load_warnings(evaluations)]
        if by_length := tables.latency_by_length_table(evaluations):
            out += ["<h3>Latency by message length</h3>", render_table(by_length, "latency-by-length")]
        out.append("</section>")

    if positive := tables.positive_class_table(evaluations):
        out += ["<section><h2>Positive class</h2>", _muted(tables.POSITIVE_CLASS_NOTE), render_table(positive, "positive-class"), "</section>"]

    if levels := tables.level_table(evaluations):
        out += ["<section><h2>Scores per hierarchy level</h2>", render_table(levels), "</section>"]

    early_exit = [(ev, table) for ev in evaluations if (table := tables.early_exit_table(ev))]
    if early_exit:
        out += ["<section><h2>Early exit</h2>", _muted(tables.EARLY_EXIT_NOTE)]
        for ev, table in early_exit:
            out += [f"<h3>{escape(tables.early_exit_heading(ev))}</h3>", render_table(table)]
        out.append("</section>")

    if compression := tables.compression_table(evaluations):
        out += ["<section><h2>Compression</h2>", _muted(tables.COMPRESSION_NOTE), render_table(compression), "</section>"]

    out.append("<section><h2>Labels, weakest first</h2>")
    for i, ev in enumerate(evaluations):
        labels = tables.weakest_labels(ev)
        summary = f"{ev['name']} — {len(labels):,} label(s)"
        if labels:
            summary += f", weakest: {labels[0].get('label', '')} (F1 {tables.fmt_score(labels[0].get('f1'))})"
        shown = render_table(tables.label_table(labels)) if labels else _muted(tables.NO_LABELS)
        out.append(f"<details{' open' if i == 0 else ''}><summary>{escape(summary)}</summary>{shown}</details>")
    out.append("</section>")

    automated = [ev for ev in evaluations if ev.get("automation")]
    if automated:
        out += ['<section><h2>Automation thresholds</h2>', _muted(tables.AUTOMATION_NOTE)]
        for ev in automated:
            out += [f"<h3>{escape(tables.automation_heading(ev))}</h3>", render_table(tables.automation_table(ev))]
            if curves := render_pr_curves(ev):
                what = f"Precision/recall curves on test of {ev['name']}'s weakest labels (dashed: target; dot: the threshold)"
                out.append(f"<details><summary>{escape(what)}</summary>{_inline_svg(curves, what)}</details>")
        out.append("</section>")

    if rejecting := tables.out_of_scope_table(evaluations):
        out += ["<section><h2>Out of scope</h2>", _muted(tables.OUT_OF_SCOPE_NOTE), render_table(rejecting), "</section>"]

    out.append(f"<section><h2>Most confused label pairs (top {tables.TOP_CONFUSIONS})</h2>")
    for ev in evaluations:
        confusions = tables.confusion_table(ev)
        out.append(f"<h3>{escape(ev['name'])}</h3>")
        out.append(render_table(confusions) if confusions else _muted(tables.NO_CONFUSIONS))
    out.append("</section>")

    out += ["<section><h2>Data notes</h2>", render_table(tables.data_table(evaluations))]
    if cleaning := tables.text_cleaning_table(evaluations):
        out += ["<h3>Text clean-up</h3>", render_table(cleaning, "text-cleaning")]
    out += [_warning(w) for w in tables.data_warnings(evaluations)]
    out.append("</section>")

    out += ["<section><h2>Machine &amp; versions</h2>", render_table(tables.machine_table(evaluations))]
    if versions := tables.versions_table(evaluations):
        out.append(render_table(versions))
    out.append("</section>")

    body = "\n".join(out)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_CSS}</style>
</head>
<body><main>
{body}
</main></body>
</html>
"""
