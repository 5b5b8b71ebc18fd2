"""The multi-label hard-label losses by name, and class-balanced weights for rare labels.

- ``bce``: each label's binary cross-entropy, every example weighing the same;
- ``focal``: BCE scaled by ``(1 - p_t)^γ`` (Lin et al. 2017), where ``p_t`` is the probability
  given to the right answer, so examples the model already gets right weigh little (trained
  models only: :mod:`textdistill.training.multi_label_loss`);
- ``balanced``: BCE whose positive examples of label j weigh :func:`positive_weights` (Cui et al.
  2019, "Class-Balanced Loss Based on Effective Number of Samples").

Torch-free, so that the TF-IDF baseline weighs its one-vs-rest regressions alike.
"""

from __future__ import annotations

import numpy as np

from textdistill.errors import TextdistillError

MULTI_LABEL_LOSSES: tuple[str, ...] = ("bce", "focal", "balanced")
# Cui et al.'s effective number saturates at 1 / (1 - β) = 1,000 examples: a rare label's
# positives weigh more than a frequent one's, but not by the raw count ratio (n_neg / n_pos is
# 563 for GoEmotions' rarest emotion: its 77 examples would weigh as much as its 43,333 negatives).
BALANCE_BETA = 0.999


def check_multi_label_loss(name: str, allowed: tuple[str, ...] = MULTI_LABEL_LOSSES, where: str = "") -> None:
    """A :class:`TextdistillError` naming the choices when ``name`` is not one of ``allowed``
    (``where``: why a known loss is not allowed here, e.g. " for the TF-IDF baseline")."""
    if name not in allowed:
        problem = f"is not available{where}" if name in MULTI_LABEL_LOSSES else "is unknown"
        raise TextdistillError(f"multi-label loss {name!r} {problem}; choose one of: {', '.join(allowed)}")


def effective_number(n: np.ndarray, beta: float = BALANCE_BETA) -> np.ndarray:
    """``(1 - β^n) / (1 - β)``: how many of ``n`` examples count as new information."""
    return (1.0 - np.power(beta, np.asarray(n, dtype=np.float64))) / (1.0 - beta)


def positive_weights(positives: np.ndarray, n_rows: int, beta: float = BALANCE_BETA) -> np.ndarray:
    """(L,) weight of each label's positive examples against its negatives (which weigh 1):
    the effective number of its negatives over that of its positives. No positives (or no
    negatives) count as one, so every weight is finite and above 0."""
    if not 0.0 < beta < 1.0:
        raise TextdistillError(f"the class-balance beta must be between 0 and 1 (exclusive), not {beta!r}")
    positives = np.asarray(positives, dtype=np.float64)
    return effective_number(np.maximum(n_rows - positives, 1.0), beta) / effective_number(np.maximum(positives, 1.0), beta)
