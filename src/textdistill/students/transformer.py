"""Transformer students: a subset of the teacher's own layers (DistilBERT's initialisation) or a
smaller packaged encoder. Either way the student is an ordinary ``TransformerClassifier``; this
module prepares the encoder it starts from and its settings, which read long messages as the
teacher does unless told otherwise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn
from transformers import AutoModel, AutoTokenizer

from textdistill.errors import TextdistillError
from textdistill.models.encoder_config import EncoderConfig
from textdistill.tuning.freeze import layer_stack

TEACHER_LAYERS = "teacher-layers"
# What a student takes over from its teacher's config: how many tokens it reads and how.
INHERITED = ("max_length", "head_fraction", "long_messages", "stride", "max_windows", "window_pooling")


def student_config(teacher: Mapping[str, Any], settings: Mapping[str, Any], encoder: str) -> EncoderConfig:
    """The config of a student on ``encoder``: the teacher's (its manifest's ``config.encoder``;
    empty for a teacher that is no transformer) way of reading long messages, then the student's
    own ``settings``. The teacher's stride is kept only with its max_length: a student of
    another max_length gets its own default."""
    saved = EncoderConfig.from_saved(dict(teacher)) if teacher else EncoderConfig()
    inherited = {key: getattr(saved, key) for key in INHERITED}
    if settings.get("max_length", saved.max_length) != saved.max_length:
        inherited["stride"] = None
    try:
        return EncoderConfig.from_dict({**inherited, **settings, "model": encoder, "method": "full"})
    except ValueError as exc:
        raise TextdistillError(f"transformer student: {exc}") from None


def every_other_layer(n_layers: int) -> list[int]:
    """DistilBERT's choice: layers 0, 2, 4, ... (0-based) of the teacher."""
    return list(range(0, n_layers, 2))


def teacher_layer_encoder(teacher_dir: str | Path, out_dir: str | Path, layers: Sequence[int] | None = None) -> Path:
    """Save the teacher's encoder keeping only ``layers`` (0-based; default every other one),
    with its tokenizer, to ``out_dir``: the starting point of a same-width, shallower student."""
    source = Path(teacher_dir) / "encoder"
    if not source.is_dir():
        raise TextdistillError(f"{teacher_dir} has no encoder/ directory: the teacher-layers student needs a transformer teacher")
    encoder = AutoModel.from_pretrained(source)
    parent, stack = layer_stack(encoder)
    keep = list(layers) if layers is not None else every_other_layer(len(stack))
    if not keep or min(keep) < 0 or max(keep) >= len(stack) or len(set(keep)) != len(keep):
        raise TextdistillError(f"layers {keep} are not distinct layers of the teacher's {len(stack)} (counted from 0)")
    parent.layer = nn.ModuleList([stack[i] for i in keep])
    encoder.config.num_hidden_layers = len(keep)
    out_dir = Path(out_dir)
    encoder.save_pretrained(out_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(source).save_pretrained(out_dir)
    return out_dir
