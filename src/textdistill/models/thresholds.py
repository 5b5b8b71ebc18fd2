"""Decision thresholds for multi-label models, tuned on validation data.

- ``global`` (the default): one threshold for every label, the one that maximises micro-F1;
- ``per_label``: each label with a positive validation example gets the threshold that
  maximises its own F1;
- ``auto``: its own threshold for each label with at least :data:`MIN_OWN_POSITIVES` positive
  validation examples, the global one for the rest.

Own thresholds trade micro-F1 for macro-F1: on GoEmotions ``auto`` raised the TF-IDF
baseline's macro-F1 by 2.2 points and cut its micro-F1 by 2.9, and on NLU++'s 166 validation
messages it lowered both (benchmarks/RESULTS.md, "Multi-label options"); hence ``global`` by
default, ``auto`` where the rare labels matter most and validation data is plentiful.

Thresholds are tuned for the rule :meth:`LabelSpace.predict` applies: a label is predicted when
its own probability reaches its threshold or a descendant is predicted. Children are tuned
before their parents, so a parent's threshold is chosen for the messages its descendants leave
undecided.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from textdistill.data.labels import deepest_first, raise_to_descendants
from textdistill.errors import TextdistillError

ThresholdMode = Literal["auto", "global", "per_label"]
THRESHOLD_MODES: tuple[str, ...] = ("auto", "global", "per_label")
# A label's F1 on k validation positives moves in steps of about 1/k: on fewer than 5, one or
# two messages would choose its threshold, where the global one is tuned on every label's
# examples. Measured, other minimums (2 to 20) only move auto between per_label and global.
MIN_OWN_POSITIVES = 5

_GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)


def check_threshold_mode(mode: str) -> None:
    """A :class:`TextdistillError` naming the modes when ``mode`` is none of them."""
    if mode not in THRESHOLD_MODES:
        raise TextdistillError(f"threshold mode {mode!r} is unknown; choose one of: {', '.join(THRESHOLD_MODES)}")


def own_threshold_labels(y_true: np.ndarray, mode: str, min_positives: int = MIN_OWN_POSITIVES) -> np.ndarray:
    """(L,) bool: the labels ``mode`` tunes a threshold of their own for (``auto``: those with
    ``min_positives`` positive examples); the rest take the global one."""
    check_threshold_mode(mode)
    positives = np.asarray(y_true, dtype=bool).sum(axis=0)
    if mode == "global":
        return np.zeros(len(positives), dtype=bool)
    return positives >= (1 if mode == "per_label" else max(min_positives, 1))


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def _best_global(y: np.ndarray, proba: np.ndarray) -> float:
    """The grid threshold with the best micro-F1, counted one threshold at a time to bound memory."""
    counts = np.empty((3, len(_GRID)))
    for t, threshold in enumerate(_GRID):
        pred = proba >= threshold
        counts[:, t] = (pred & y).sum(), (pred & ~y).sum(), (~pred & y).sum()
    return float(_GRID[int(np.argmax(_f1(*counts)))])


def _best_own(y: np.ndarray, proba: np.ndarray, forced: np.ndarray) -> float:
    """The grid threshold with the best F1 of one label (n,) predicted where ``forced`` or ``proba`` reaches it."""
    pred = (proba[:, None] >= _GRID[None, :]) | forced[:, None]
    tp = (pred & y[:, None]).sum(axis=0)
    fp = (pred & ~y[:, None]).sum(axis=0)
    fn = (~pred & y[:, None]).sum(axis=0)
    return float(_GRID[int(np.argmax(_f1(tp, fp, fn)))])


def tune_thresholds(
    y_true: np.ndarray, proba: np.ndarray, mode: str = "global", parents: np.ndarray | None = None, min_positives: int = MIN_OWN_POSITIVES
) -> np.ndarray:
    """Thresholds (L,) for validation labels ``y_true`` (n, L) and probabilities ``proba`` (n, L).

    ``parents[j]`` is the column of label j's parent (-1 for none; :meth:`LabelSpace.parent_indices`);
    without it the labels are flat.
    """
    y = np.asarray(y_true, dtype=bool)
    proba = np.asarray(proba, dtype=np.float64)
    parents = np.full(y.shape[1], -1) if parents is None else np.asarray(parents)
    own = own_threshold_labels(y, mode, min_positives)
    # With one threshold for all, "its own probability or a predicted descendant's reaches it"
    # is "its probability raised to its descendants' reaches it".
    thresholds = np.full(y.shape[1], _best_global(y, raise_to_descendants(proba, parents)))
    predicted = np.zeros_like(y)
    forced = np.zeros_like(y)  # a predicted descendant makes the label a prediction whatever its threshold
    for j in deepest_first(parents):
        if own[j]:
            thresholds[j] = _best_own(y[:, j], proba[:, j], forced[:, j])
        predicted[:, j] = (proba[:, j] >= thresholds[j]) | forced[:, j]
        if parents[j] >= 0:
            forced[:, parents[j]] |= predicted[:, j]
    return thresholds
