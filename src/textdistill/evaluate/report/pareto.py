"""The quality/latency trade-off: which models are on the Pareto front and who dominates the rest."""

from __future__ import annotations

import math


def number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is missing, not a number or NaN/inf."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def point(evaluation: dict) -> tuple[float, float] | None:
    """(ms/message p50, macro-F1) of a model, or None when it cannot be placed on a log-latency axis."""
    latency, f1 = number(evaluation.get("latency_ms_p50")), number(evaluation.get("macro_f1"))
    if latency is None or f1 is None or latency <= 0:
        return None
    return latency, f1


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when ``a`` is at least as fast and as accurate as ``b``, and strictly better in one."""
    return a[0] <= b[0] and a[1] >= b[1] and a != b


def dominators(evaluations: list[dict]) -> dict[int, list[int]]:
    """For each plottable model (by index), the Pareto-front models that dominate it; [] means on the front."""
    points = {i: p for i, ev in enumerate(evaluations) if (p := point(ev)) is not None}
    front = [j for j, q in points.items() if not any(_dominates(p, q) for p in points.values())]
    return {i: [j for j in front if _dominates(points[j], p)] for i, p in points.items()}
