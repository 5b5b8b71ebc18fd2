"""Houlsby bottleneck adapters: a few percent of new parameters per layer, the rest frozen.

Each adapter is `h + up(gelu(down(h)))`, applied to the output of the attention projection and
of the feed-forward projection, before the residual add and LayerNorm. Adapters go in through
forward hooks on the stock projections, so the encoder's own code and weights stay untouched
and the same base checkpoint serves any number of adapter sets.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from textdistill.tuning.freeze import transformer_layers

# Per layer: (attention output projection, feed-forward output projection).
_PROJECTIONS = (
    ("attention.output.dense", "output.dense"),  # BERT, RoBERTa, XLM-R, ELECTRA
    ("attention.attn.o", "output.dense"),  # MPNet
    ("attention.out_lin", "ffn.lin2"),  # DistilBERT
)


class Adapter(nn.Module):
    """One bottleneck; `up` starts at zero so the model starts as the pretrained one."""

    def __init__(self, hidden_size: int, adapter_size: int) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, adapter_size)
        self.up = nn.Linear(adapter_size, hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(F.gelu(self.down(hidden)))

    def hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        # A bound method, so a deep copy of the model hooks the copied adapter, not this one.
        return self(output)


class AdapterEncoder(nn.Module):
    """The encoder plus its adapters, called exactly like the encoder.

    Holding the adapters here makes `.parameters()`, `.to()` and `state_dict()` see them.
    """

    def __init__(self, encoder: nn.Module, adapters: nn.ModuleList) -> None:
        super().__init__()
        self.encoder = encoder
        self.adapters = adapters

    @property
    def config(self):
        return self.encoder.config

    def forward(self, *args, **kwargs):
        return self.encoder(*args, **kwargs)


def _projections(layer: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    for paths in _PROJECTIONS:
        try:
            found = tuple(layer.get_submodule(path) for path in paths)
        except AttributeError:
            continue
        if all(isinstance(module, nn.Linear) for module in found):
            return found
    raise ValueError(
        f"cannot find the attention and feed-forward output projections in {type(layer).__name__}; "
        f"textdistill knows {', '.join(' / '.join(paths) for paths in _PROJECTIONS)}"
    )


def add_adapters(encoder: nn.Module, adapter_size: int) -> AdapterEncoder:
    """Insert adapters in every layer; train only them and the LayerNorms (as Houlsby does).

    Call it once per encoder: a second call would stack a second set of adapters.
    """
    encoder.requires_grad_(False)
    for module in encoder.modules():
        if isinstance(module, nn.LayerNorm):
            module.requires_grad_(True)
    adapters = nn.ModuleList()
    for layer in transformer_layers(encoder):
        pair = nn.ModuleDict()
        for name, projection in zip(("attention", "feed_forward"), _projections(layer)):
            adapter = Adapter(projection.out_features, adapter_size).to(projection.weight.device, projection.weight.dtype)
            projection.register_forward_hook(adapter.hook)
            pair[name] = adapter
        adapters.append(pair)
    return AdapterEncoder(encoder, adapters)


def adapter_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable weights only (adapters and LayerNorms): what a fine-tuned copy adds to the base."""
    return {name: parameter.detach() for name, parameter in module.named_parameters() if parameter.requires_grad}


def load_adapter_state_dict(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load `adapter_state_dict` output into a freshly prepared encoder, refusing partial matches."""
    expected = {name for name, parameter in module.named_parameters() if parameter.requires_grad}
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            "adapter weights do not match the prepared encoder "
            f"(missing: {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected: {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}); "
            "prepare the same base encoder with the same tuning method before loading"
        )
    module.load_state_dict(state, strict=False)
