"""TinyBERT's hidden-state loss (Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language Understanding")."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import register_loss
from textdistill.distill.losses.states import WidthMatch, masked_mse, parse_layer_map, resolve_layer_map


@register_loss("tinybert_hidden")
class TinyBertHiddenLoss(DistillLoss):
    """``Σ_l MSE(h_s^l W_h, h_t^m(l))`` over the mapped layers, each MSE over real tokens.

    ``layer_map`` maps student layers to teacher layers, counted from 1 (``hidden[l]``); by default
    the uniform map l -> l·N/M. As in TinyBERT, the layer terms are summed and one W_h serves
    every layer; it is learned only when ``student_dim`` and ``teacher_dim`` differ, as a
    parameter of this loss that the trainer must optimise with the student.
    """

    def __init__(self, layer_map: Mapping | None = None, student_dim: int | None = None, teacher_dim: int | None = None) -> None:
        super().__init__()
        self.layer_map = parse_layer_map(layer_map, self.name)
        self.width = WidthMatch(self.name, student_dim, teacher_dim)

    def forward(self, batch: DistillBatch) -> Tensor:
        pair = self.outputs(batch, "student_hidden", "teacher_hidden")
        if pair is None:
            return self.zero(batch)
        student, teacher = pair
        mask = batch.token_mask(teacher[0])
        layer_map = resolve_layer_map(self.layer_map, len(student) - 1, len(teacher) - 1, self.name)
        return sum(masked_mse(self.width(student[s], teacher[t]), teacher[t], mask) for s, t in layer_map.items())
