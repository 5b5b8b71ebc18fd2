"""The quality-vs-latency scatter plot, as SVG text."""

from __future__ import annotations

import io
import math

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from textdistill.evaluate.report.analysis import Analysis
from textdistill.evaluate.report.pareto import dominators

POINT_ID = "td-point-{}"  # SVG id of model i's marker group
INTERVAL_ID = "td-interval-{}"  # SVG id of model i's error bar
# text as <text> (small, selectable), ids stable between runs; model names are plain text, never TeX
_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "textdistill", "font.size": 9, "text.usetex": False}


def render_plot(analysis: Analysis) -> str:
    """The headline metric against ms/message (p50, log x) with one labelled point per model, its
    95 % bootstrap interval as an error bar, and the Pareto front. Wide, to fill the page.

    Uses a bare ``Figure`` (no pyplot), so it needs no GUI backend and leaves the global one alone.

    Model ``i``'s marker is drawn inside ``<g id="td-point-i">``. Front models are filled, dominated
    ones hollow; the front is a step line giving the best macro-F1 reachable within each latency.
    """
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(11, 4.6), layout="constrained")
        ax = fig.add_subplot()
        dominated_by = dominators(analysis)
        if dominated_by:
            _draw(ax, analysis, dominated_by)
        else:
            ax.text(0.5, 0.5, f"no model has both a {analysis.title} and a latency", ha="center", transform=ax.transAxes)
            ax.set(xticks=[], yticks=[])
        ax.set_xlabel("ms/message (p50, batch 1, log scale)")
        ax.set_ylabel(f"{analysis.title} (bars: 95 % interval)")
        ax.grid(True, which="both", alpha=0.3)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _draw(ax, analysis: Analysis, dominated_by: dict[int, list[int]]) -> None:
    points = {i: (analysis.latency(i), analysis.values[i]) for i in dominated_by}
    xs = [x for x, _ in points.values()]
    low, high = min(xs) / 1.6, max(xs) * 1.6
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.margins(y=0.12)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    # label minor ticks (2, 3, 5 ...) too when the axis spans too little to show several powers of ten
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if high / low < 30 else ""))

    front = sorted(points[i] for i, by in dominated_by.items() if not by)
    steps = [*front, (high, front[-1][1])]
    ax.step([x for x, _ in steps], [y for _, y in steps], where="post", color="C0", alpha=0.6, label="Pareto front")
    # the y axis spans the points and their intervals
    ys = [y for _, y in points.values()] + [end for i in points if (interval := analysis.noise.interval(i)) for end in interval]
    near_y = 0.04 * ((max(ys) - min(ys)) or 1.0)
    placed: list[tuple[float, float]] = []  # (log10 x, y) of the labels placed so far
    for i, (x, y) in points.items():
        on_front = not dominated_by[i]
        if interval := analysis.noise.interval(i):
            bar = [[y - interval[0]], [interval[1] - y]]
            _, _, (bar_lines,) = ax.errorbar([x], [y], yerr=bar, fmt="none", ecolor="0.55", elinewidth=1, capsize=3, zorder=2)
            bar_lines.set_gid(INTERVAL_ID.format(i))
        # labels of points within about a third in x and 4 % of the y range would overlap: stack them
        position = (math.log10(x), y)
        stacked = sum(abs(position[0] - px) < 0.15 and abs(y - py) < near_y for px, py in placed)
        ax.scatter(
            [x],
            [y],
            s=46,
            zorder=3,
            gid=POINT_ID.format(i),
            linewidths=1.5,
            facecolors="C0" if on_front else "white",
            edgecolors="C0" if on_front else "0.45",
        )
        offset = (6, 5 + 13 * stacked)
        placed.append(position)
        name = analysis.evaluations[i]["name"]
        ax.annotate(name, (x, y), xytext=offset, textcoords="offset points", annotation_clip=False, parse_math=False)
    ax.legend(loc="best")


PR_CURVES = 12  # labels shown, weakest average precision first


def render_pr_curves(evaluation: dict, limit: int = PR_CURVES) -> str | None:
    """Small multiples of the precision/recall curves on test of a model's automated labels,
    weakest average precision first, each with its target precision (dashed) and the point its
    threshold gives; None without automation curves."""
    rows = [r for r in (evaluation.get("automation") or {}).get("labels") or [] if r.get("curve")]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: r.get("average_precision") if r.get("average_precision") is not None else 1.0)[:limit]
    columns = min(4, len(rows))
    lines = math.ceil(len(rows) / columns)
    with matplotlib.rc_context({**_STYLE, "font.size": 8}):
        fig = Figure(figsize=(11, 2.3 * lines), layout="constrained")
        for i, row in enumerate(rows):
            ax = fig.add_subplot(lines, columns, i + 1)
            ax.plot(row["curve"]["recall"], row["curve"]["precision"], color="C0", drawstyle="steps-post")
            ax.axhline(row["target_precision"], color="C3", linestyle="--", linewidth=0.8)
            if row.get("recall") is not None and row.get("precision") is not None:
                ax.plot([row["recall"]], [row["precision"]], "o", color="C3", markersize=4)
            ap = row.get("average_precision")
            ax.set_title(f"{row['label']} (AP {ap:.2f})" if ap is not None else row["label"], fontsize=8)
            ax.set(xlim=(0, 1.02), ylim=(0, 1.05))
            ax.grid(True, alpha=0.3)
            if i % columns == 0:
                ax.set_ylabel("precision")
            if i >= len(rows) - columns:
                ax.set_xlabel("recall")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
