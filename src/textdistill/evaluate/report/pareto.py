"""The quality/latency trade-off: which models are on the Pareto front and who dominates the rest,
counting a quality difference only when it is outside the noise."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textdistill.evaluate.report.analysis import Analysis


def number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is missing, not a number or NaN/inf."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


FASTER = 1.1  # a model counts as faster only when its p50 latency is at least 10 % lower


def dominates(analysis: Analysis, a: int, b: int) -> bool:
    """Model a is not slower than model b (within ``FASTER``) and its headline metric is better
    outside the noise (or, with no per-message results recorded, simply higher)."""
    fast, slow = analysis.latency(a), analysis.latency(b)
    difference = analysis.difference(a, b)
    return fast is not None and slow is not None and fast <= slow * FASTER and difference is not None and difference.sign > 0


def dominators(analysis: Analysis) -> dict[int, list[int]]:
    """For each plottable model (by index), the Pareto-front models that dominate it; [] means on the front."""
    points = [i for i in range(len(analysis.evaluations)) if analysis.latency(i) is not None and analysis.values[i] is not None]
    front = [j for j in points if not any(dominates(analysis, i, j) for i in points)]
    return {i: [j for j in front if dominates(analysis, j, i)] for i in points}
