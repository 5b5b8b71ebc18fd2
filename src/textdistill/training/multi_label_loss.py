"""The multi-label hard-label loss of trained models (the teacher's, and the students' ``ce``
term): per-label BCE, focal BCE or class-balanced BCE, as named in
:mod:`textdistill.models.class_balance`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from textdistill.errors import TextdistillError
from textdistill.models.class_balance import BALANCE_BETA, check_multi_label_loss, positive_weights

FOCAL_GAMMA = 2.0  # Lin et al.'s best on dense detection, where easy negatives dominate as they do for rare labels


class MultiLabelLoss:
    """Elementwise (n, L) loss of logits against 0/1 targets; the caller averages.

    ``focal`` scales each term by ``(1 - p_t)^gamma`` (``gamma = 0`` is BCE); ``balanced``
    weighs each label's positives by the effective-number ratio of its training examples, which
    :meth:`fit` counts (every annotated training row, once, before training).
    """

    def __init__(self, kind: str = "bce", *, gamma: float = FOCAL_GAMMA, beta: float = BALANCE_BETA) -> None:
        check_multi_label_loss(kind)
        if not gamma >= 0:
            raise TextdistillError(f"the focal loss needs gamma >= 0 (0 is plain BCE), not {gamma!r}")
        self.kind, self.gamma, self.beta = kind, float(gamma), float(beta)
        self.positive_weights: Tensor | None = None

    def fit(self, labels: Tensor) -> MultiLabelLoss:
        """Count the positives per label in the training targets (n, L) (``balanced`` only)."""
        if self.kind == "balanced":
            counts = labels.detach().float().sum(dim=0).cpu().numpy()
            self.positive_weights = torch.as_tensor(positive_weights(counts, len(labels), self.beta).astype(np.float32))
        return self

    def __call__(self, logits: Tensor, targets: Tensor) -> Tensor:
        targets = targets.to(logits.dtype)
        if self.kind == "balanced":
            if self.positive_weights is None:
                raise TextdistillError("the balanced multi-label loss weighs labels by their training frequency: call fit(labels) first")
            weights = self.positive_weights.to(logits.device, logits.dtype)
            return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=weights, reduction="none")
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        if self.kind == "focal" and self.gamma:
            p = logits.sigmoid()
            wrong = p * (1 - targets) + (1 - p) * targets  # 1 - p_t
            # floored: at 0, (1 - p_t)^gamma with gamma < 1 has an infinite derivative
            return wrong.clamp(min=1e-12).pow(self.gamma) * bce
        return bce
