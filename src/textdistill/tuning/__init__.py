"""How much of the teacher's encoder to fine-tune: all of it, or a parameter-efficient part.

`prepare_encoder` applies a `TuningMethod` and returns the module to call in place of the
encoder; the classification head is the caller's and is always trained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn
from transformers import PreTrainedModel

from textdistill.tuning.adapters import adapter_state_dict, add_adapters, load_adapter_state_dict
from textdistill.tuning.bitfit import train_biases_only
from textdistill.tuning.freeze import freeze_bottom_layers, transformer_layers
from textdistill.tuning.lora import add_lora, merge_lora

__all__ = [
    "METHOD_NAMES",
    "TuningMethod",
    "adapter_state_dict",
    "count_parameters",
    "load_adapter_state_dict",
    "merge_lora",
    "parse_method",
    "prepare_encoder",
    "transformer_layers",
]

METHOD_NAMES = ("full", "freeze", "bitfit", "adapter", "lora", "head")
_FORMS = "full, freeze:K, bitfit, adapter, adapter:SIZE, lora, lora:RANK, head"


@dataclass(frozen=True)
class TuningMethod:
    """A fine-tuning method and its settings; only the settings of `name` are used.

    `lora_target_modules` overrides the query/value projections LoRA adapts by default.
    """

    name: str
    freeze_layers: int = 0
    adapter_size: int = 64
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.name not in METHOD_NAMES:
            raise ValueError(f"unknown tuning method {self.name!r}; choose one of {', '.join(METHOD_NAMES)}")
        if self.freeze_layers < 0 or self.adapter_size < 1 or self.lora_rank < 1:
            raise ValueError("freeze_layers must be >= 0, adapter_size and lora_rank >= 1")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")


def parse_method(text: str) -> TuningMethod:
    """Read the CLI form of a method, e.g. `freeze:9` or `lora:16`."""
    match = re.fullmatch(r"(full|freeze|bitfit|adapter|lora|head)(?::(\d+))?", text.strip().lower())
    if match is None:
        raise ValueError(f"unknown tuning method {text!r}; valid forms: {_FORMS}")
    name, number = match.group(1), match.group(2)
    if name == "freeze" and number is None:
        raise ValueError(f"freeze needs the number of bottom layers to freeze, e.g. freeze:9; valid forms: {_FORMS}")
    if number is None:
        return TuningMethod(name)
    value = int(number)
    if name == "freeze":
        return TuningMethod(name, freeze_layers=value)
    if name == "adapter" and value >= 1:
        return TuningMethod(name, adapter_size=value)
    if name == "lora" and value >= 1:
        return TuningMethod(name, lora_rank=value)
    raise ValueError(f"invalid tuning method {text!r}; valid forms: {_FORMS} (SIZE and RANK at least 1)")


def prepare_encoder(encoder: PreTrainedModel, method: TuningMethod) -> nn.Module:
    """Apply `method` to the encoder in place; call the returned module instead of the encoder.

    It takes the encoder's arguments and returns its outputs (`last_hidden_state`,
    `hidden_states` when asked); only the parameters the method trains require gradients.
    """
    if method.name == "full":
        return encoder.requires_grad_(True)
    if method.name == "head":
        return encoder.requires_grad_(False)
    if method.name == "freeze":
        return freeze_bottom_layers(encoder, method.freeze_layers)
    if method.name == "bitfit":
        return train_biases_only(encoder)
    if method.name == "adapter":
        return add_adapters(encoder, method.adapter_size)
    return add_lora(encoder, method.lora_rank, method.lora_alpha, method.lora_dropout, method.lora_target_modules)


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a weight shared by several modules counts once."""
    parameters = list(module.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)
