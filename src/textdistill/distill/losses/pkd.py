"""Patient knowledge distillation (Sun et al. 2019, "Patient Knowledge Distillation for BERT Model Compression")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss
from textdistill.errors import TextdistillError

STRATEGIES = ("skip", "last")
POOLINGS = ("cls", "mean")


def pkd_teacher_layers(n_student: int, n_teacher: int, strategy: str) -> list[int]:
    """The teacher layers (1-based) that student layers 1..M-1 learn from.

    ``"skip"``: every (N/M)-th layer, {2, 4, 6, 8, 10} for 6 student and 12 teacher layers;
    ``"last"``: the M-1 layers below the top, {7, 8, 9, 10, 11}. The top layers are left to the
    loss on logits, as in the paper.
    """
    if not 1 < n_student <= n_teacher:
        raise TextdistillError(f"loss 'pkd' needs a student of 2 to {n_teacher} layers (the teacher's depth), got {n_student}")
    if strategy == "skip":
        return [layer * (n_teacher // n_student) for layer in range(1, n_student)]
    return list(range(n_teacher - n_student + 1, n_teacher))


@register_loss("pkd")
class PatientKDLoss(DistillLoss):
    """MSE between the L2-normalised [CLS] (position 0, ``pooling="cls"``) or mean-pooled
    (``"mean"``, over real tokens) states of student layers 1..M-1 and the teacher layers chosen
    by :func:`pkd_teacher_layers`, averaged over layers, rows and dimensions (the paper's code)."""

    def __init__(self, strategy: str = "skip", pooling: str = "cls") -> None:
        super().__init__()
        if strategy not in STRATEGIES or pooling not in POOLINGS:
            raise TextdistillError(
                f"loss 'pkd' takes strategy in {STRATEGIES} and pooling in {POOLINGS}, got strategy={strategy!r}, pooling={pooling!r}"
            )
        self.strategy = strategy
        self.pooling = pooling

    def forward(self, batch: DistillBatch) -> Tensor:
        pair = self.outputs(batch, "student_hidden", "teacher_hidden")
        if pair is None:
            return self.zero(batch)
        student, teacher = pair
        layers = pkd_teacher_layers(len(student) - 1, len(teacher) - 1, self.strategy)
        pooled_student = torch.stack([self._pool(student[s], batch) for s in range(1, len(layers) + 1)])
        pooled_teacher = torch.stack([self._pool(teacher[t], batch) for t in layers])
        if pooled_student.shape != pooled_teacher.shape:
            raise TextdistillError(
                f"loss 'pkd' compares states of equal width, got student {pooled_student.shape[-1]} and teacher "
                f"{pooled_teacher.shape[-1]}; for a narrower student use 'tinybert_hidden', which learns a projection"
            )
        return F.mse_loss(F.normalize(pooled_student, dim=-1), F.normalize(pooled_teacher, dim=-1))

    def _pool(self, states: Tensor, batch: DistillBatch) -> Tensor:
        if self.pooling == "cls":
            return states[:, 0]
        mask = batch.token_mask(states).unsqueeze(-1)
        return (states * mask).sum(1) / mask.sum(1).clamp(min=1)
