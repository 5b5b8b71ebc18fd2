"""LoRA (via `peft`): low-rank updates of the attention query and value projections.

The updates merge back into the frozen weights after training, so the teacher ships as a plain
encoder with no extra cost and no `peft` at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedModel

# The query and value projections, by `config.model_type`.
_QUERY_VALUE = {
    "bert": ("query", "value"),
    "roberta": ("query", "value"),
    "xlm-roberta": ("query", "value"),
    "electra": ("query", "value"),
    "mpnet": ("q", "v"),
    "distilbert": ("q_lin", "v_lin"),
    "deberta-v2": ("query_proj", "value_proj"),
}


def add_lora(
    encoder: PreTrainedModel,
    rank: int,
    alpha: int,
    dropout: float,
    target_modules: Sequence[str] | None = None,
) -> PeftModel:
    """Wrap the encoder (in place) so only the LoRA matrices train.

    `target_modules` names the Linear layers to adapt; by default the query and value
    projections of the encoder's architecture.
    """
    if target_modules is None:
        model_type = encoder.config.model_type
        if model_type not in _QUERY_VALUE:
            raise ValueError(
                f"no default LoRA targets for model type {model_type!r} "
                f"(known: {', '.join(sorted(_QUERY_VALUE))}); name the attention projections with target_modules"
            )
        target_modules = _QUERY_VALUE[model_type]
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules))
    return get_peft_model(encoder, config)


def merge_lora(module: PeftModel) -> PreTrainedModel:
    """Fold the LoRA updates into the base weights and return the plain encoder."""
    if not isinstance(module, PeftModel):
        raise TypeError(f"merge_lora needs the model prepared with LoRA, not {type(module).__name__}")
    return module.merge_and_unload()
