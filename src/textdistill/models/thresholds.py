"""Decision thresholds for multi-label models, tuned on validation data."""

from __future__ import annotations

from typing import Literal

import numpy as np

ThresholdMode = Literal["global", "per_label"]

_GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def tune_thresholds(y_true: np.ndarray, proba: np.ndarray, mode: ThresholdMode = "global") -> np.ndarray:
    """Thresholds (L,) that maximise micro-F1 (``global``) or each label's F1 (``per_label``).

    A label with no positive example in the validation data keeps the global threshold: there
    is nothing to tune it on.
    """
    y = np.asarray(y_true, dtype=bool)
    # counts[t, l] per grid threshold t and label l, one threshold at a time to bound memory
    tp = np.empty((len(_GRID), y.shape[1]))
    fp = np.empty_like(tp)
    fn = np.empty_like(tp)
    for t, threshold in enumerate(_GRID):
        pred = proba >= threshold
        tp[t] = (pred & y).sum(axis=0)
        fp[t] = (pred & ~y).sum(axis=0)
        fn[t] = (~pred & y).sum(axis=0)
    micro = _f1(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    best_global = float(_GRID[int(np.argmax(micro))])
    thresholds = np.full(y.shape[1], best_global)
    if mode == "per_label":
        per_label = _f1(tp, fp, fn)
        has_positive = y.any(axis=0)
        thresholds[has_positive] = _GRID[np.argmax(per_label[:, has_positive], axis=0)]
    elif mode != "global":
        raise ValueError(f"threshold mode must be 'global' or 'per_label', not {mode!r}")
    return thresholds
