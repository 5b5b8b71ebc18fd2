"""Logit regression (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple
Neural Networks"): the BiLSTM-SOFT objective, suited to small non-transformer students."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss


@register_loss("logit_mse")
class LogitMSELoss(DistillLoss):
    """``MSE(z_s, z_t)`` on raw logits, averaged over rows and labels; the same for multi-label data."""

    def forward(self, batch: DistillBatch) -> Tensor:
        pair = self.outputs(batch, "student_logits", "teacher_logits")
        return self.zero(batch) if pair is None else F.mse_loss(*pair)
