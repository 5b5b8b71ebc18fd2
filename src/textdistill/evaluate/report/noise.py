"""Bootstrap confidence intervals for the headline metric, and paired comparisons between models.

Each evaluation records, per test message, whether it was right (accuracy) or the true
positives, false positives and false negatives of its headline metric (``per_message``); the
metric of any resample of the messages is ``2 TP / (2 TP + FP + FN)``, accuracy included (a
single-label message is one TP, or one FP and one FN). All models evaluated on the same messages (same ``test_sha256``)
are resampled with the same message indices, so the difference of two models is bootstrapped
pairwise: a difference is real only when its 95 % interval excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textdistill.evaluate.report.pareto import number

RESAMPLES = 1000
SEED = 0
LEVEL = 95


@dataclass(frozen=True)
class Difference:
    """Model a's headline metric minus model b's, with its paired-bootstrap 95 % interval (None: not assessable)."""

    value: float
    low: float | None = None
    high: float | None = None

    @property
    def assessed(self) -> bool:
        return self.low is not None

    @property
    def sign(self) -> int:
        """+1 / -1 when the difference is outside the noise (or, unassessed, simply non-zero), else 0."""
        if self.assessed:
            return 1 if self.low > 0 else -1 if self.high < 0 else 0
        return int(np.sign(self.value))


def _counts(evaluation: dict, metric: str) -> np.ndarray | None:
    """The (3, n) TP/FP/FN counts per message, or None when not recorded for ``metric``."""
    per_message = evaluation.get("per_message")
    if not isinstance(per_message, dict) or per_message.get("metric") != metric:
        return None
    try:
        if "correct" in per_message:
            correct = _parse(per_message["correct"])
            counts = np.array([correct, 1 - correct, 1 - correct])
        else:
            counts = np.array([_parse(per_message[key]) for key in ("tp", "fp", "fn")])
    except (KeyError, ValueError):
        return None
    return counts if counts.shape[1] and counts.shape[1] == number(evaluation.get("n_messages")) else None


def _parse(digits: object) -> np.ndarray:
    """Counts written as a digit string ("0110"), or space-separated when some exceed 9."""
    text = str(digits)
    return np.array([int(c) for c in (text.split() if " " in text else text)], dtype=np.int64)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(denominator.shape), where=denominator > 0)


class Noise:
    """Bootstrap samples of each model's headline metric (``metric`` as named in ``per_message``)."""

    def __init__(self, evaluations: list[dict], metric: str, values: list[float | None]) -> None:
        self.values = values
        self.samples: dict[int, np.ndarray] = {}
        self.test_set: dict[int, str] = {}
        indices: dict[int, np.ndarray] = {}
        for i, ev in enumerate(evaluations):
            counts = _counts(ev, metric)
            if counts is None or values[i] is None:
                continue
            n = counts.shape[1]
            if n not in indices:  # the same seed and n give the same resamples for every model
                indices[n] = np.random.default_rng(SEED).integers(0, n, size=(RESAMPLES, n))
            tp, fp, fn = (row[indices[n]].sum(axis=1) for row in counts)
            self.samples[i] = _f1(tp, fp, fn)
            self.test_set[i] = str(ev.get("test_sha256") or f"n={n}")

    def interval(self, i: int) -> tuple[float, float] | None:
        """Model i's 95 % percentile-bootstrap interval, or None when it recorded no per-message results."""
        if i not in self.samples:
            return None
        low, high = np.percentile(self.samples[i], [(100 - LEVEL) / 2, (100 + LEVEL) / 2])
        return float(low), float(high)

    def difference(self, a: int, b: int) -> Difference | None:
        """Model a's metric minus model b's; its interval is paired over the same resamples when both
        were evaluated on the same messages. None when either has no value."""
        if self.values[a] is None or self.values[b] is None:
            return None
        value = self.values[a] - self.values[b]
        if a in self.samples and b in self.samples and self.test_set[a] == self.test_set[b]:
            low, high = np.percentile(self.samples[a] - self.samples[b], [(100 - LEVEL) / 2, (100 + LEVEL) / 2])
            return Difference(value, float(low), float(high))
        return Difference(value)
