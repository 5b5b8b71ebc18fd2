"""Hard-label cross-entropy: the ``(1 - α) · CE(y, g)`` half of Hinton et al.'s (2015) mix."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss


@register_loss("ce")
class HardLabelLoss(DistillLoss):
    """Softmax cross-entropy (single-label) or per-label sigmoid BCE (multi-label) with the
    annotations, averaged over the labelled rows (and labels) only; zero when no row is labelled."""

    def forward(self, batch: DistillBatch) -> Tensor:
        if batch.labels is None:
            return self.zero(batch)
        rows = batch.labelled_rows()
        logits, labels = batch.student_logits[rows], batch.labels[rows]
        # Sum, then divide by at least 1: an empty selection gives 0 where a mean gives NaN.
        if batch.multi_label:
            total = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="sum")
            return total / (rows.sum() * logits.shape[-1]).clamp(min=1)
        return F.cross_entropy(logits, labels, reduction="sum") / rows.sum().clamp(min=1)
