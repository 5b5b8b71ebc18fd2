"""DistilBERT's cosine embedding loss (Sanh et al. 2019, "DistilBERT, a distilled version of BERT")."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss
from textdistill.errors import TextdistillError


@register_loss("cosine")
class CosineHiddenLoss(DistillLoss):
    """``1 - cos(h_s, h_t)`` between the final hidden states, token by token, averaged over real
    tokens. Student and teacher must be equally wide (DistilBERT copies the teacher's layers);
    a narrower student wants ``tinybert_hidden``, which learns a projection."""

    def forward(self, batch: DistillBatch) -> Tensor:
        pair = self.outputs(batch, "student_hidden", "teacher_hidden")
        if pair is None:
            return self.zero(batch)
        student, teacher = pair[0][-1], pair[1][-1]
        if student.shape != teacher.shape:
            raise TextdistillError(
                f"loss 'cosine' compares final hidden states of equal shape, got student {tuple(student.shape)} and "
                f"teacher {tuple(teacher.shape)}; for a narrower student use 'tinybert_hidden', which learns a projection"
            )
        mask = batch.token_mask(student)
        distance = 1 - F.cosine_similarity(student, teacher, dim=-1)
        return (distance * mask).sum() / mask.sum().clamp(min=1)
