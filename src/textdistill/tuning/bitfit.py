"""BitFit (Ben Zaken et al.): train only the bias terms, under 0.1 % of the encoder.

Biases shift what each layer already computes; on small and mid-sized data that is often
enough to come close to full fine-tuning at a fraction of the optimizer state.
"""

from __future__ import annotations

from torch import nn


def train_biases_only(encoder: nn.Module) -> nn.Module:
    """Make every bias trainable (LayerNorm biases too) and freeze everything else, in place."""
    for name, parameter in encoder.named_parameters():
        parameter.requires_grad_(name.rpartition(".")[2] == "bias")
    return encoder
