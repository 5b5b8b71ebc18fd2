"""What a distillation loss sees (:class:`DistillBatch`) and what it is (:class:`DistillLoss`).

Missing targets and missing inputs are told apart:

- a batch with no teacher outputs at all is a hard-label-only step: every loss that learns from
  the teacher contributes a zero (kept in the autograd graph), so one loss sum serves every step;
  likewise a loss on labels contributes zero when no row is labelled;
- a batch with some teacher outputs but not the ones a loss needs, or a teacher output without
  its student counterpart, is a wiring mistake and raises.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn


@dataclass
class DistillBatch:
    """Student and teacher outputs for one batch of n messages with L labels.

    ``labels`` are class indices (n,) for single-label data or a float multi-hot (n, L) for
    multi-label data; ``label_mask`` (n,) bool marks the annotated rows (all rows when omitted),
    and the values of the other rows are ignored. Hidden states are lists of (rows, T, d) tensors
    (rows: the n messages, or their windows for a model that reads long messages in windows),
    one per layer with index 0 the embeddings output (Hugging Face's ``hidden_states``);
    attentions are lists of (rows, heads, T, T), one per layer; ``attention_mask`` (rows, T) marks
    real tokens. Losses on intermediate states compare token by token, so student and teacher must
    share the tokenizer.
    """

    student_logits: Tensor
    teacher_logits: Tensor | None = None
    labels: Tensor | None = None
    label_mask: Tensor | None = None
    multi_label: bool = False
    student_hidden: Sequence[Tensor] | None = None
    teacher_hidden: Sequence[Tensor] | None = None
    student_attentions: Sequence[Tensor] | None = None
    teacher_attentions: Sequence[Tensor] | None = None
    attention_mask: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.student_logits.shape[0]
        if self.teacher_logits is not None and self.teacher_logits.shape != self.student_logits.shape:
            raise ValueError(f"teacher_logits {tuple(self.teacher_logits.shape)} and student_logits {tuple(self.student_logits.shape)} differ in shape")
        if self.labels is not None:
            expected = 2 if self.multi_label else 1
            if self.labels.dim() != expected or self.labels.shape[0] != n:
                kind = "a float multi-hot (n, L)" if self.multi_label else "class indices (n,)"
                raise ValueError(f"labels {tuple(self.labels.shape)} should be {kind} with n = {n}")
        if self.label_mask is not None and (self.label_mask.dtype != torch.bool or self.label_mask.shape != (n,)):
            raise ValueError(f"label_mask should be a bool tensor of shape ({n},), got {self.label_mask.dtype} {tuple(self.label_mask.shape)}")

    @property
    def has_teacher(self) -> bool:
        """Whether the batch carries any teacher output (False for a hard-label-only step)."""
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name.startswith("teacher_"))

    def labelled_rows(self) -> Tensor:
        """(n,) bool: the rows whose labels a loss may use."""
        n, device = self.student_logits.shape[0], self.student_logits.device
        if self.labels is None:
            return torch.zeros(n, dtype=torch.bool, device=device)
        return self.label_mask if self.label_mask is not None else torch.ones(n, dtype=torch.bool, device=device)

    def token_mask(self, like: Tensor) -> Tensor:
        """(n, T) mask of real tokens in the dtype of ``like`` (n, T, ...); all ones without an attention mask."""
        if self.attention_mask is None:
            return like.new_ones(like.shape[:2])
        return self.attention_mask.to(like.dtype)


class DistillLoss(ABC, nn.Module):
    """One loss term: ``loss(batch)`` returns a scalar. Subclasses register with ``@register_loss``."""

    name: ClassVar[str] = "abstract"

    @abstractmethod
    def forward(self, batch: DistillBatch) -> Tensor: ...

    def prepare(self, labels: Tensor, label_mask: Tensor) -> None:
        """Called once before training with every training row's labels and which rows are
        annotated (as in :class:`DistillBatch`), for losses that weigh labels by their frequency."""

    def outputs(self, batch: DistillBatch, student_field: str, teacher_field: str) -> tuple | None:
        """The student and teacher values this loss compares, or None in a hard-label-only step."""
        teacher = getattr(batch, teacher_field)
        if teacher is None:
            if batch.has_teacher:
                raise ValueError(
                    f"loss {self.name!r} needs batch.{teacher_field}, which this batch lacks although it has other "
                    "teacher outputs (for hidden states or attentions, call the model with output_hidden_states=True "
                    "or output_attentions=True, or record them with textdistill.distill.hooks.HiddenStateRecorder)"
                )
            return None
        student = getattr(batch, student_field)
        if student is None:
            raise ValueError(f"loss {self.name!r} needs batch.{student_field} to compare with batch.{teacher_field}")
        return student, teacher

    @staticmethod
    def zero(batch: DistillBatch) -> Tensor:
        """A zero that stays in the graph, so ``total.backward()`` works when every term is skipped."""
        return batch.student_logits.sum() * 0.0
