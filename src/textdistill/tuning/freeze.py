"""Freeze the embeddings and the bottom layers (Lee et al.: freezing 9 of 12 keeps >= 90 %).

The bottom layers learn general features that fine-tuning barely changes; freezing them saves
their gradients and optimizer state.
"""

from __future__ import annotations

from torch import nn

# Where the stack of transformer layers lives, relative to the bare encoder.
_LAYER_STACKS = (
    "encoder.layer",  # BERT, RoBERTa, XLM-R, ELECTRA, MPNet, DeBERTa
    "transformer.layer",  # DistilBERT
)


def layer_stack(model: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    # A model with a task head (BertForSequenceClassification) keeps the encoder in base_model.
    base = getattr(model, "base_model", model)
    for path in _LAYER_STACKS:
        try:
            layers = base.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(layers, nn.ModuleList):
            return base.get_submodule(path.rpartition(".")[0]), layers
    raise ValueError(
        f"cannot find the transformer layers of {type(model).__name__}: "
        f"textdistill knows encoders with layers at {' or '.join(_LAYER_STACKS)} "
        "(BERT, RoBERTa, MPNet, DistilBERT and the like)"
    )


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's transformer layers, bottom first, whatever the architecture calls them."""
    return layer_stack(model)[1]


def freeze_bottom_layers(encoder: nn.Module, k: int) -> nn.Module:
    """Freeze the embeddings and the bottom `k` layers in place; everything else trains.

    Parameters of the layer stack that sit outside any layer (MPNet's relative attention bias)
    count as embeddings: they are position information that feeds the frozen layers too.
    """
    stack, layers = layer_stack(encoder)
    if not 0 <= k <= len(layers):
        raise ValueError(f"freeze:{k} asks for {k} frozen layers but the encoder has {len(layers)}")
    encoder.requires_grad_(True)
    getattr(encoder, "base_model", encoder).embeddings.requires_grad_(False)
    in_layers = {id(p) for p in layers.parameters()}
    for parameter in stack.parameters():
        if id(parameter) not in in_layers:
            parameter.requires_grad_(False)
    for layer in layers[:k]:
        layer.requires_grad_(False)
    return encoder
