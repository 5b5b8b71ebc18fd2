"""Training arguments, with the names practitioners already know."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from textdistill.models.class_balance import check_multi_label_loss


@dataclass(frozen=True)
class TrainingArguments:
    """How a transformer classifier is fine-tuned.

    The head gets its own, larger learning rate and starts from a linear probe fitted on the
    frozen encoder's features, so the first epoch is not spent undoing a random head.
    """

    epochs: int = 3
    min_steps: int = 0  # optimizer steps to train at least: small sets get more epochs (see FineTuner.fit)
    batch_size: int = 32
    learning_rate: float = 5e-5
    head_learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    linear_probe: bool = True
    probe_C: float | None = None  # None: chosen on the validation data
    early_stopping_patience: int = 2  # epochs without a better validation score
    checkpoint_every: int = 100  # optimizer steps between checkpoints
    device: str = "auto"
    mixed_precision: bool = True  # bf16 autocast on CUDA; ignored on CPU
    multi_label_loss: str = "bce"  # multi-label labels: bce | focal | balanced (see models.class_balance)

    def __post_init__(self) -> None:
        check_multi_label_loss(self.multi_label_loss)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingArguments:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
