"""The BiLSTM student of Tang et al. (2019), "Distilling Task-Specific Knowledge from BERT into
Simple Neural Networks": token vectors -> one bidirectional LSTM layer -> max pooling over time
-> a ReLU MLP -> logits. About 100 times fewer parameters than BERT-base, and no attention.

Token vectors start from the teacher's own (Model2Vec-style, read with the teacher's
tokenizer), from GloVe (words), or at random for hashed character n-grams; see
:mod:`textdistill.students.embeddings`. Sequences are packed, so padding never reaches the LSTM
and batched predictions equal one-by-one predictions.

Saved as ``bilstm.safetensors`` plus the vocabulary files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textdistill.errors import ModelError
from textdistill.models.base import MANIFEST_FILE, TextClassifier, register_model
from textdistill.models.manifest import Manifest
from textdistill.models.transformer import length_sorted_logits, pick_device
from textdistill.students.embeddings import initial_vectors
from textdistill.students.tokens import Vocabulary, load_vocabulary
from textdistill.persistence import load_model_arrays
from textdistill.settings import from_settings
from textdistill.training.arguments import TrainingArguments

WEIGHTS_FILE = "bilstm.safetensors"


@dataclass(frozen=True)
class BiLSTMConfig:
    """What the BiLSTM is built from and how big it is."""

    embeddings: str = "teacher"  # teacher | glove | hash
    init_from: str | None = None  # a saved teacher directory or an encoder alias / path
    dim: int = 300  # token vector size (teacher vectors are reduced by PCA; GloVe is 50)
    hidden: int = 300  # LSTM units per direction
    mlp: int = 400  # ReLU layer between the pooled states and the logits
    dropout: float = 0.1
    max_tokens: int = 128
    vocab_size: int = 50_000  # word vocabulary (glove)
    hash_buckets: int = 1 << 16  # character n-gram buckets (hash)
    predict_batch_size: int = 256
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> BiLSTMConfig:
        return from_settings(cls, data, "BiLSTM")


class BiLSTMNetwork(nn.Module):
    def __init__(self, vectors: np.ndarray, hidden: int, mlp: int, n_labels: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding.from_pretrained(torch.from_numpy(vectors), freeze=False)
        self.lstm = nn.LSTM(vectors.shape[1], hidden, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, mlp), nn.ReLU(), nn.Dropout(dropout), nn.Linear(mlp, n_labels))

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embedding(input_ids), lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=input_ids.shape[1])
        # Padding is masked out of the max explicitly (not through pad_packed_sequence's
        # padding_value), so that the ONNX export, whose LSTM writes zeros there, pools the same.
        padding = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0) >= lengths.to(input_ids.device).unsqueeze(1)
        return self.head(states.masked_fill(padding.unsqueeze(-1), float("-inf")).max(dim=1).values)


@register_model("bilstm")
class BiLSTMStudent(TextClassifier):
    """Tang et al.'s BiLSTM; trained by the distillation trainer (or ``fit`` on labels alone)."""

    def __init__(self, config: BiLSTMConfig | None = None, *, training: TrainingArguments | None = None, checkpoint_dir=None) -> None:
        super().__init__()
        self.config = config or BiLSTMConfig()
        self.training = training or self.default_training()
        self.checkpoint_dir = checkpoint_dir
        self.device = pick_device(self.training.device)
        self.history: list[dict] = []
        self.vocabulary: Vocabulary | None = None
        self.network: BiLSTMNetwork | None = None

    @staticmethod
    def default_training() -> TrainingArguments:
        return TrainingArguments(epochs=10, min_steps=5000, batch_size=50, learning_rate=1e-3, head_learning_rate=1e-3, weight_decay=0.0, warmup_ratio=0.0, linear_probe=False, early_stopping_patience=3)

    # -- the training protocol of FineTuner ----------------------------------------------------
    def build_network(self, texts: Sequence[str]) -> None:
        config = self.config
        self.vocabulary, vectors = initial_vectors(
            config.embeddings, list(texts), init_from=config.init_from, dim=config.dim, vocab_size=config.vocab_size,
            hash_buckets=config.hash_buckets, weighting=False, seed=config.seed, device=self.training.device,
        )
        torch.manual_seed(self.training.seed)
        self.network = BiLSTMNetwork(vectors, config.hidden, config.mlp, len(self._space()), config.dropout).to(self.device)

    def training_config(self) -> dict:
        return asdict(self.config)

    def _fit(self, texts: list[str], label_sets, validation=None) -> None:
        from textdistill.training.finetune import FineTuner

        self.history = FineTuner(self.training, self.checkpoint_dir).train(self, texts, label_sets, validation)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids in order, at most ``max_tokens``; an empty message reads as one padding id."""
        cap = self.config.max_tokens
        return [ids[:cap] or [0] for ids in self._vocabulary().encode(list(texts))]

    def collate(self, ids: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(i) for i in ids])
        input_ids = torch.zeros((len(ids), int(lengths.max())), dtype=torch.long)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq)
        return {"input_ids": input_ids.to(self.device), "lengths": lengths}

    # -- prediction ------------------------------------------------------------------------------
    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        return length_sorted_logits(self, texts, self.config.predict_batch_size)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        logits = torch.from_numpy(self.decision_function(texts))
        return (torch.sigmoid(logits) if self._space().multi_label else torch.softmax(logits, dim=1)).numpy()

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self._network().parameters())

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory, *, config: dict | None = None, training_data: dict | None = None, metrics: dict | None = None) -> Path:
        config = {"bilstm": asdict(self.config), "training": {"arguments": self.training.to_dict(), "history": self.history}, **(config or {})}
        return super().save(directory, config=config, training_data=training_data or {}, metrics=metrics)

    def _save_weights(self, directory: Path) -> None:
        self._vocabulary().save(directory)
        save_file({k: v.detach().contiguous().cpu() for k, v in self._network().state_dict().items()}, str(directory / WEIGHTS_FILE))

    @classmethod
    def _load_weights(cls, directory: Path, manifest: Manifest) -> Self:
        if not isinstance(manifest.config.get("bilstm"), dict):
            raise ModelError("has no config.bilstm object, which a BiLSTM's manifest holds.", file=directory / MANIFEST_FILE)
        config = BiLSTMConfig.from_dict(manifest.config["bilstm"])
        if min(config.hidden, config.mlp, config.max_tokens, config.predict_batch_size) < 1:
            raise ModelError(f"has BiLSTM sizes below 1 in config.bilstm ({config}).", file=directory / MANIFEST_FILE)
        model = cls(config)
        model.vocabulary = load_vocabulary(directory)
        path = directory / WEIGHTS_FILE
        state = load_model_arrays(path, framework="pt")
        rows = model.vocabulary.size
        if "embedding.weight" not in state or state["embedding.weight"].ndim != 2 or len(state["embedding.weight"]) != rows:
            shape = tuple(state["embedding.weight"].shape) if "embedding.weight" in state else None
            raise ModelError(f"holds an embedding table of shape {shape}; the vocabulary needs {rows} rows: the file does not belong to this model.", file=path)
        vectors = np.zeros(tuple(state["embedding.weight"].shape), dtype=np.float32)
        model.network = BiLSTMNetwork(vectors, config.hidden, config.mlp, len(manifest.labels), config.dropout)
        try:
            model.network.load_state_dict(state)
        except RuntimeError as exc:  # names each missing, unexpected or mis-shaped parameter
            raise ModelError(f"does not fit the BiLSTM its manifest describes: {exc}", file=path) from None
        model.network.to(model.device)
        return model

    def _vocabulary(self) -> Vocabulary:
        if self.vocabulary is None:
            raise RuntimeError("the BiLSTM has no vocabulary yet: call fit() or load() first")
        return self.vocabulary

    def _network(self) -> BiLSTMNetwork:
        if self.network is None:
            raise RuntimeError("the BiLSTM has no network yet: call fit() or load() first")
        return self.network
