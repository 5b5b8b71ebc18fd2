"""Settings of a transformer classifier, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderConfig:
    """What the classifier is built from and how it reads text."""

    model: str = "minilm-l6"  # alias, local directory or hub id
    method: str = "full"  # full | freeze:K | bitfit | adapter[:SIZE] | lora[:RANK] | head
    max_length: int = 128
    head_fraction: float = 0.25  # share of max_length kept from the start of a long message
    dropout: float = 0.1
    predict_batch_size: int = 64

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
