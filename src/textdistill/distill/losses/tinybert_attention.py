"""TinyBERT's attention loss (Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language Understanding")."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss
from textdistill.distill.losses.states import parse_layer_map, resolve_layer_map


@register_loss("tinybert_attention")
class TinyBertAttentionLoss(DistillLoss):
    """``Σ_l MSE(A_s^l, A_t^m(l))``, averaged over heads and over the (query, key) pairs of real tokens.

    Compares attention probabilities, which is what Hugging Face models return (load them with
    ``attn_implementation="eager"``: SDPA returns no attentions). ``layer_map`` as in
    ``tinybert_hidden`` (layer l is ``attentions[l - 1]``). When the head counts differ, the
    head-averaged maps are compared.
    """

    def __init__(self, layer_map: Mapping | None = None) -> None:
        super().__init__()
        self.layer_map = parse_layer_map(layer_map, self.name)

    def forward(self, batch: DistillBatch) -> Tensor:
        pair = self.outputs(batch, "student_attentions", "teacher_attentions")
        if pair is None:
            return self.zero(batch)
        student, teacher = pair
        layer_map = resolve_layer_map(self.layer_map, len(student), len(teacher), self.name)
        return sum(self._layer(student[s - 1], teacher[t - 1], batch) for s, t in layer_map.items())

    def _layer(self, student: Tensor, teacher: Tensor, batch: DistillBatch) -> Tensor:
        if student.shape[1] != teacher.shape[1]:
            student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
        if student.shape != teacher.shape:
            raise ValueError(f"cannot compare student attentions {tuple(student.shape)} with teacher attentions {tuple(teacher.shape)}")
        tokens = batch.token_mask(teacher[:, 0])
        pairs = (tokens[:, :, None] * tokens[:, None, :]).unsqueeze(1)  # (n, 1, T, T): query and key both real
        squared = (student - teacher).pow(2) * pairs
        return squared.sum() / (pairs.sum() * student.shape[1]).clamp(min=1)
