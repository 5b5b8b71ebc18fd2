"""TinyBERT's embedding-layer loss (Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language Understanding")."""

from __future__ import annotations

from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss
from textdistill.distill.losses.states import WidthMatch, masked_mse


@register_loss("tinybert_embedding")
class TinyBertEmbeddingLoss(DistillLoss):
    """``MSE(E_s W_e, E_t)`` on the embeddings outputs (``hidden[0]``), over real tokens.

    W_e is learned only when ``student_dim`` and ``teacher_dim`` differ: it is a parameter of this
    loss, which the trainer must optimise with the student.
    """

    def __init__(self, student_dim: int | None = None, teacher_dim: int | None = None) -> None:
        super().__init__()
        self.width = WidthMatch(self.name, student_dim, teacher_dim)

    def forward(self, batch: DistillBatch) -> Tensor:
        pair = self.outputs(batch, "student_hidden", "teacher_hidden")
        if pair is None:
            return self.zero(batch)
        student, teacher = pair[0][0], pair[1][0]
        return masked_mse(self.width(student, teacher), teacher, batch.token_mask(teacher))
