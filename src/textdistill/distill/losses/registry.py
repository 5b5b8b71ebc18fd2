"""Losses by name (torchdistill's registry): a config picks terms by string, a new loss is one
class in one file decorated with ``@register_loss("name")``.

Some losses learn parameters of their own (TinyBERT's width projections): the trainer must
optimise ``WeightedLossSum.parameters()`` together with the student's and move the loss sum to
the student's device.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from textdistill.distill.losses.base import DistillBatch, DistillLoss
from textdistill.errors import TextdistillError

_LOSSES: dict[str, type[DistillLoss]] = {}


def register_loss(name: str):
    """Class decorator: make a :class:`DistillLoss` available to configs as ``name``."""

    def decorate(cls: type[DistillLoss]) -> type[DistillLoss]:
        if _LOSSES.get(name, cls) is not cls:
            raise ValueError(f"loss name {name!r} is already taken by {_LOSSES[name].__qualname__}")
        cls.name = name
        _LOSSES[name] = cls
        return cls

    return decorate


def available_losses() -> list[str]:
    """The registered loss names, sorted."""
    return sorted(_LOSSES)


def loss_parameters(name: str) -> dict[str, inspect.Parameter]:
    """The parameters a loss accepts from a config, by name."""
    if name not in _LOSSES:
        raise TextdistillError(f"unknown loss {name!r}; the losses are: {', '.join(available_losses())}")
    parameters = inspect.signature(_LOSSES[name]).parameters
    return {key: p for key, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def get_loss(name: str, **params: Any) -> DistillLoss:
    """A new loss ``name`` built with ``params``; unknown names and parameters are errors that list the valid ones."""
    accepted = loss_parameters(name)
    valid = f"its parameters are: {', '.join(accepted)}" if accepted else "it takes no parameters"
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TextdistillError(f"loss {name!r} has no parameter {', '.join(map(repr, unknown))}; {valid}")
    missing = [key for key, p in accepted.items() if p.default is inspect.Parameter.empty and key not in params]
    if missing:
        raise TextdistillError(f"loss {name!r} needs {', '.join(map(repr, missing))}; {valid}")
    return _LOSSES[name](**params)


class WeightedLossSum(nn.Module):
    """The weighted sum of configured loss terms.

    Built from a list of terms, each a mapping with ``name``, an optional ``weight`` (1.0 when
    omitted) and the loss's own parameters, e.g. ``[{"name": "kd", "weight": 0.5, "temperature": 2.0},
    {"name": "ce", "weight": 0.5}]``. ``forward(batch)`` returns the total and each term's
    unweighted value (detached, for logging). Each loss name appears at most once.
    """

    def __init__(self, terms: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        if not terms:
            raise TextdistillError(f"no loss terms configured; give at least one of: {', '.join(available_losses())}")
        self.losses = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        for position, term in enumerate(terms, start=1):
            params = dict(term)
            name = params.pop("name", None)
            weight = params.pop("weight", 1.0)
            where = f"loss term {position}"
            if not isinstance(name, str):
                raise TextdistillError(f"{where} has no 'name'; the losses are: {', '.join(available_losses())}")
            if name in self.losses:
                raise TextdistillError(f"{where} repeats loss {name!r}; give each loss once")
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
                raise TextdistillError(f"{where} has weight {weight!r}; a weight is a finite number >= 0")
            try:
                self.losses[name] = get_loss(name, **params)
            except TextdistillError as error:
                raise TextdistillError(f"{where}: {error}") from None
            self.weights[name] = float(weight)

    def prepare(self, labels: Tensor, label_mask: Tensor) -> None:
        """:meth:`DistillLoss.prepare` of every term."""
        for loss in self.losses.values():
            loss.prepare(labels, label_mask)

    def forward(self, batch: DistillBatch) -> tuple[Tensor, dict[str, Tensor]]:
        values = {name: loss(batch) for name, loss in self.losses.items()}
        total = sum(self.weights[name] * value for name, value in values.items())
        return total, {name: value.detach() for name, value in values.items()}
