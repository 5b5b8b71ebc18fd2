"""Hard-label cross-entropy: the ``(1 - α) · CE(y, g)`` half of Hinton et al.'s (2015) mix."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss
from textdistill.models.class_balance import BALANCE_BETA
from textdistill.training.multi_label_loss import FOCAL_GAMMA, MultiLabelLoss


@register_loss("ce")
class HardLabelLoss(DistillLoss):
    """Softmax cross-entropy (single-label) or a per-label sigmoid loss (multi-label) with the
    annotations, averaged over the labelled rows (and labels) only; zero when no row is labelled.

    Multi-label, ``multi_label_loss`` is ``bce``, ``focal`` (with ``gamma``) or ``balanced``
    (with ``beta``, counted on the annotated rows that :meth:`prepare` is given)."""

    def __init__(self, multi_label_loss: str = "bce", gamma: float = FOCAL_GAMMA, beta: float = BALANCE_BETA) -> None:
        super().__init__()
        self.multi_label_loss = MultiLabelLoss(multi_label_loss, gamma=gamma, beta=beta)

    def prepare(self, labels: Tensor, label_mask: Tensor) -> None:
        if labels.dim() == 2:  # multi-hot: multi-label
            self.multi_label_loss.fit(labels[label_mask])

    def forward(self, batch: DistillBatch) -> Tensor:
        if batch.labels is None:
            return self.zero(batch)
        rows = batch.labelled_rows()
        logits, labels = batch.student_logits[rows], batch.labels[rows]
        # Sum, then divide by at least 1: an empty selection gives 0 where a mean gives NaN.
        if batch.multi_label:
            total = self.multi_label_loss(logits, labels).sum()
            return total / (rows.sum() * logits.shape[-1]).clamp(min=1)
        return F.cross_entropy(logits, labels, reduction="sum") / rows.sum().clamp(min=1)
