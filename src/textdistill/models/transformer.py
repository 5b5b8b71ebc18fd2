"""A pretrained encoder with a classification head: the teacher (and, later, transformer students).

Mean pooling over the attention mask (how sentence encoders such as MiniLM and MPNet were
trained), dropout, one linear layer. A message longer than ``max_length`` tokens is read in
overlapping windows (each with its own special tokens; every window of a batch goes through the
encoder in one call, and a message's window features are pooled into one, by mean, max or both,
before the head) or, as models saved before windows were, cut to its head and tail tokens (Sun et
al. 2019: the start and the end of a long text carry most of its label). A message that fits in
one window is read exactly as head+tail reads it. Prediction sorts messages by length and pads
per batch.

Saved as ``encoder/`` (``save_pretrained`` safetensors + tokenizer), ``head.safetensors`` and,
for adapter-tuned teachers, ``adapters.safetensors``; LoRA is merged into the encoder first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Self

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from textdistill.errors import ModelError, TextdistillError
from textdistill.models.base import TextClassifier, register_model
from textdistill.models.encoder_config import EncoderConfig
from textdistill.models.manifest import Manifest
from textdistill.models.resolve import resolve_model
from textdistill.persistence import check_shapes, load_model_arrays
from textdistill.students.tokens import default_stride, framed_windows, head_tail_ids, split_windows, window_rows
from textdistill.training.arguments import TrainingArguments
from textdistill.tuning import TuningMethod, count_parameters, parse_method, prepare_encoder
from textdistill.tuning.adapters import adapter_state_dict, load_adapter_state_dict
from textdistill.tuning.lora import merge_lora

ENCODER_DIR = "encoder"
HEAD_FILE = "head.safetensors"
ADAPTERS_FILE = "adapters.safetensors"


def check_encoder_dir(directory: Path) -> Path:
    """``directory`` when it holds a saved encoder (config, weights, tokenizer), else a
    :class:`ModelError` naming what is missing: a saved model never falls back to the hub."""
    if not directory.is_dir():
        raise ModelError("is missing: a saved transformer model keeps its encoder and tokenizer there.", file=directory)
    needs = {
        "config.json": ["config.json"],
        "the weights (model.safetensors)": ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"],
        "the tokenizer (tokenizer.json or vocab.txt)": ["tokenizer.json", "vocab.txt", "tokenizer.model", "vocab.json"],
    }
    missing = [what for what, names in needs.items() if not any((directory / name).is_file() for name in names)]
    if missing:
        raise ModelError(f"lacks {', '.join(missing)}: the saved encoder is incomplete.", file=directory)
    return directory


def pick_device(device: str = "auto") -> torch.device:
    """CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.inference_mode()
def length_sorted_logits(model, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """(n, L) logits of a torch model (``token_ids``, ``collate``, ``network``) in batches of
    messages of similar length, so that little padding is computed."""
    network = model.network
    if network is None:
        raise RuntimeError(f"this {model.kind} model has no network yet: call fit() or load() first")
    network.eval()
    texts = list(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")
    logits = np.empty((len(texts), len(model.label_space)), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        batch = model.collate(model.token_ids([texts[i] for i in rows]))
        logits[rows] = network(**batch).float().cpu().numpy()
    return logits


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(rows, hidden): each row's states averaged over its attention mask."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def pool_windows(features: torch.Tensor, windows: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """Per-message features from per-window ``features`` (rows, hidden).

    ``windows`` (messages, k) holds the rows of each message's windows, -1 past its last; None
    means each row is a message. ``mean`` and ``max`` keep the width, ``mean_max`` puts both side
    by side. A gather and a masked reduction rather than a scatter, so that the ONNX graph needs
    only Gather, ReduceSum and ReduceMax; a message of one window gets its row back exactly.
    """
    if windows is None:
        mean = maximum = features
    else:
        present = (windows >= 0).unsqueeze(-1)
        gathered = features[windows.clamp(min=0)]
        if pooling != "max":
            mean = (gathered * present.to(features.dtype)).sum(1) / present.sum(1).clamp(min=1).to(features.dtype)
        if pooling != "mean":
            maximum = gathered.masked_fill(~present, float("-inf")).amax(1)
    if pooling == "mean":
        return mean
    if pooling == "max":
        return maximum
    return torch.cat([mean, maximum], dim=-1)


class EncoderNetwork(nn.Module):
    """Encoder -> mean pooling per window -> pooling of each message's windows -> dropout -> linear head."""

    def __init__(self, encoder: nn.Module, hidden_size: int, n_labels: int, dropout: float, pooling: str = "mean") -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if pooling == "mean_max" else 1), n_labels)

    def window_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(rows, hidden): each padded row's mean-pooled encoder output."""
        return mean_pool(self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state, attention_mask)

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, windows: torch.Tensor | None = None) -> torch.Tensor:
        """(messages, head input): what the head reads of each message."""
        return pool_windows(self.window_features(input_ids, attention_mask), windows, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, windows: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.dropout(self.pool(input_ids, attention_mask, windows)))


@register_model("transformer")
class TransformerClassifier(TextClassifier):
    """A fine-tuned encoder classifier. Train it with :class:`textdistill.training.FineTuner`."""

    supports_linear_probe = True  # the head starts from a logistic regression on frozen features

    def __init__(
        self,
        config: EncoderConfig | None = None,
        *,
        training: TrainingArguments | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.config = config or EncoderConfig()
        self.training = training or TrainingArguments()
        self.checkpoint_dir = checkpoint_dir
        self.device = pick_device(self.training.device)
        self.history: list[dict] = []
        self.tokenizer: PreTrainedTokenizerBase | None = None
        self.network: EncoderNetwork | None = None
        self.method: TuningMethod = parse_method(self.config.method)
        self.source: str | None = None  # the resolved pretrained model, once built

    # -- building --------------------------------------------------------------------------
    def build_network(self, texts: Sequence[str]) -> None:
        """Build from the configured pretrained model (resolved offline when an alias)."""
        self.build(resolve_model(self.config.model), len(self._space()))

    def training_config(self) -> dict:
        return {"model": self.config.model, "method": self.config.method, **self.config.long_message_settings()}

    def build(self, source: str, n_labels: int, *, local_files_only: bool = False) -> None:
        """Load the pretrained encoder and tokenizer from ``source`` (a resolved directory or hub
        id; only a directory with ``local_files_only``), apply the tuning method, and add a fresh head."""
        hf_logging.disable_progress_bar()  # one bar per weight file is noise; our own bars show progress
        self.source = source
        self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
        encoder = AutoModel.from_pretrained(source, local_files_only=local_files_only)
        if self.config.windows:
            # Resolved now that the special tokens are known; saved so that a reload reads alike.
            self.config = replace(self.config, stride=self._window_stride())
        network = EncoderNetwork(prepare_encoder(encoder, self.method), encoder.config.hidden_size, n_labels, self.config.dropout, self.config.pooling)
        self.network = network.to(self.device)

    def _fit(self, texts: list[str], label_sets: Sequence[Sequence[str]], validation=None) -> None:
        from textdistill.training.finetune import FineTuner

        self.history = FineTuner(self.training, self.checkpoint_dir).train(self, texts, label_sets, validation)

    # -- tokenising and predicting ---------------------------------------------------------
    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Per message, the ids the encoder reads, special tokens included. A message longer than
        ``max_length`` is cut to its head and tail, or read in windows of ``max_length`` joined end
        to end (``collate`` cuts them apart again with :func:`split_windows`)."""
        config = self.config
        prefix, suffix = self._special_tokens()
        budget = self._text_budget()
        encoded = self._tokenizer()(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        read = []
        for ids in encoded:
            if len(ids) <= config.max_length:
                read.append(ids)
                continue
            start, text, end = ids[:prefix], ids[prefix : len(ids) - suffix], ids[len(ids) - suffix :]
            if config.windows:
                read.append(framed_windows(text, start, end, budget, config.stride, config.max_windows))
            else:
                read.append(start + head_tail_ids(text, budget, config.head_fraction) + end)
        return read

    def _text_budget(self) -> int:
        """Text tokens a window (or the head+tail cut) holds between its special tokens."""
        budget = self.config.max_length - sum(self._special_tokens())
        if budget < 1:
            raise TextdistillError(f"max_length {self.config.max_length} leaves no room for text between the special tokens: give a larger max_length.")
        return budget

    def _window_stride(self) -> int:
        """The configured stride, or 3/4 of a window's text; refused when it would skip text."""
        budget = self._text_budget()
        stride = self.config.stride or default_stride(budget)
        if stride > budget:
            raise TextdistillError(
                f"stride {stride} is longer than the {budget} text tokens a window of max_length {self.config.max_length} holds, "
                f"so text between windows would go unread: give a stride of at most {budget}."
            )
        return stride

    def _special_tokens(self) -> tuple[int, int]:
        """How many special tokens the tokenizer puts before and after a message ([CLS] ... [SEP])."""
        tokenizer = self._tokenizer()
        bare = tokenizer("hello", add_special_tokens=False)["input_ids"]
        full = tokenizer("hello", add_special_tokens=True)["input_ids"]
        for start in range(len(full) - len(bare) + 1):
            if full[start : start + len(bare)] == bare:
                return start, len(full) - start - len(bare)
        raise ValueError(f"cannot locate the special tokens of {type(tokenizer).__name__}")

    def collate(self, ids: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        """Pad a batch's windows to the longest; with windows, ``windows`` (messages, most windows)
        holds the rows of each message's windows, -1 past its last."""
        messages = [split_windows(seq, self.config.max_length) if self.config.windows else [seq] for seq in ids]
        rows = [window for windows in messages for window in windows]
        longest = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), longest), self._tokenizer().pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for row, seq in enumerate(rows):
            input_ids[row, : len(seq)] = torch.tensor(seq)
            attention_mask[row, : len(seq)] = 1
        batch = {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
        if self.config.windows:
            batch["windows"] = torch.from_numpy(window_rows([len(windows) for windows in messages])).to(self.device)
        return batch

    def encode_batch(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.collate(self.token_ids(texts))

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (n, L), computed in length-sorted batches."""
        return length_sorted_logits(self, texts, self.config.predict_batch_size)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        logits = torch.from_numpy(self.decision_function(texts))
        return (torch.sigmoid(logits) if self._space().multi_label else torch.softmax(logits, dim=1)).numpy()

    @property
    def n_params(self) -> int:
        return count_parameters(self._network())[1]

    @property
    def trainable_params(self) -> int:
        return count_parameters(self._network())[0]

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path, *, config: dict | None = None, training_data: dict | None = None, metrics: dict | None = None) -> Path:
        trainable, total = count_parameters(self._network())
        config = {
            "encoder": asdict(self.config),
            "method": self.config.method,
            "trainable_params": trainable,
            "total_params": total,
            "training": {"arguments": self.training.to_dict(), "history": self.history},
            **(config or {}),
        }
        return super().save(directory, config=config, training_data=training_data or {}, metrics=metrics)

    def _save_weights(self, directory: Path) -> None:
        network = self._network()
        encoder = network.encoder
        if self.method.name == "adapter":
            save_file({k: v.contiguous() for k, v in adapter_state_dict(encoder).items()}, str(directory / ADAPTERS_FILE))
            encoder = encoder.encoder  # the base model; its trained LayerNorms are in the adapter file too
        elif self.method.name == "lora":
            encoder = merge_lora(encoder)
            network.encoder = encoder
            self.method = parse_method("full")
        encoder.save_pretrained(directory / ENCODER_DIR, safe_serialization=True)
        self.tokenizer.save_pretrained(directory / ENCODER_DIR)
        save_file({"weight": network.head.weight.detach().contiguous(), "bias": network.head.bias.detach().contiguous()}, str(directory / HEAD_FILE))

    @classmethod
    def _load_weights(cls, directory: Path, manifest: Manifest) -> Self:
        config = EncoderConfig.from_saved(manifest.config.get("encoder", {}))
        # A LoRA teacher was merged into its encoder when saved: it loads as a plain encoder.
        method = config.method if not config.method.startswith("lora") else "full"
        model = cls(EncoderConfig.from_dict({**asdict(config), "method": method}))
        encoder_dir = check_encoder_dir(directory / ENCODER_DIR)
        try:
            model.build(str(encoder_dir), len(manifest.labels), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - transformers and tokenizers raise many kinds for a damaged file
            raise ModelError(f"holds an encoder or tokenizer that cannot be read ({type(exc).__name__}: {exc}).", file=encoder_dir) from None
        hidden = model.network.head.in_features
        head_path = directory / HEAD_FILE
        head = load_model_arrays(head_path, framework="pt")
        check_shapes(head_path, head, {"weight": (len(manifest.labels), hidden), "bias": (len(manifest.labels),)})
        model.network.head.load_state_dict(head)
        if model.method.name == "adapter":
            adapters_path = directory / ADAPTERS_FILE
            try:
                load_adapter_state_dict(model.network.encoder, load_model_arrays(adapters_path, framework="pt"))
            except (RuntimeError, KeyError, ValueError) as exc:
                raise ModelError(f"does not fit this model's encoder: {exc}", file=adapters_path) from None
        model.network.to(model.device)
        return model

    def _tokenizer(self) -> PreTrainedTokenizerBase:
        if self.tokenizer is None:
            raise RuntimeError("the classifier has no tokenizer yet: call build(), fit() or load() first")
        return self.tokenizer

    def _network(self) -> EncoderNetwork:
        if self.network is None:
            raise RuntimeError("the classifier has no network yet: call build(), fit() or load() first")
        return self.network
