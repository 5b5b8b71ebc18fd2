"""Soft-target distillation (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a Neural Network")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss
from textdistill.errors import TextdistillError


@register_loss("kd")
class SoftTargetLoss(DistillLoss):
    """The student matches the teacher's probabilities softened by temperature T.

    Single-label: ``T² · KL(softmax(z_t/T) || softmax(z_s/T))``, summed over classes, averaged
    over rows. Multi-label: ``T² · BCE(sigmoid(z_s/T), sigmoid(z_t/T))``, averaged over rows and
    labels: each label is its own binary soft target, where a softmax would make labels compete.
    T² keeps the gradients' scale independent of T. The multi-label term is smallest, not zero,
    when student and teacher agree: its minimum is the entropy of the teacher's probabilities.
    """

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise TextdistillError(f"loss 'kd' needs a temperature > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def forward(self, batch: DistillBatch) -> Tensor:
        pair = self.outputs(batch, "student_logits", "teacher_logits")
        if pair is None:
            return self.zero(batch)
        student, teacher = (z / self.temperature for z in pair)
        if batch.multi_label:
            loss = F.binary_cross_entropy_with_logits(student, teacher.sigmoid())
        else:
            loss = F.kl_div(student.log_softmax(-1), teacher.log_softmax(-1), reduction="batchmean", log_target=True)
        return self.temperature**2 * loss
