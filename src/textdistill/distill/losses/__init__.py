"""Distillation losses, one class per file, selectable by name from a config.

``WeightedLossSum([{"name": "kd", "weight": 0.5, "temperature": 2.0}, {"name": "ce", "weight": 0.5}])``
builds the objective; ``available_losses()`` lists the names. Losses with learned projections
(``tinybert_embedding``, ``tinybert_hidden`` with differing widths) have parameters: optimise
``WeightedLossSum.parameters()`` together with the student's.
"""

from textdistill.distill.losses import (  # noqa: F401  (importing a loss registers it)
    ce,
    cosine,
    kd,
    logit_mse,
    pkd,
    tinybert_attention,
    tinybert_embedding,
    tinybert_hidden,
)
from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.distill.losses.registry import WeightedLossSum, available_losses, get_loss, loss_parameters, register_loss

__all__ = ["DistillBatch", "DistillLoss", "WeightedLossSum", "available_losses", "get_loss", "loss_parameters", "register_loss"]
