"""The static student: a bag of token vectors, mean-pooled, and a linear or small MLP head.

The fastest student (Model2Vec, fastText, EELBERT). A message is the mean of the vectors of its
tokens and of its hashed word bigrams (word order, fastText style); a head maps that mean to
label logits. The token vectors start from

- ``teacher``: the teacher's own tokenizer and token vectors distilled from its encoder
  (Model2Vec's recipe: each token through the encoder, PCA to ``dim``, SIF weights),
- ``glove``: lowercase words with 50-d GloVe vectors,
- ``hash``: hashed character n-grams of words with random vectors and no vocabulary table,

and are then trained with the head by :class:`~textdistill.training.finetune.FineTuner` (or the
distillation trainer). Training uses torch; prediction is numpy only (plus ``tokenizers`` for
subword vocabularies), so a saved static student loads and predicts without torch or
transformers installed. Because a mean is linear, prediction folds the head's first linear
layer into the table when that makes it narrower (``table @ W.T``: for a linear head, one
number per label per token), which gives the same logits with far less memory traffic.

Saved as ``weights.safetensors`` (the table as ``embedding.weight``, the head under the torch
network's parameter names) and ``vocabulary.json`` (plus the teacher's ``tokenizer.json`` for
subword vocabularies).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Self

import numpy as np

from textdistill.errors import ModelError, TextdistillError
from textdistill.settings import from_settings
from textdistill.models.base import TextClassifier, register_model
from textdistill.models.manifest import Manifest
from textdistill.persistence import check_shapes, require_file, save_arrays
from textdistill.students.embeddings import KINDS as EMBEDDING_KINDS
from textdistill.students.embeddings import initial_vectors
from textdistill.students.tokens import TokenFeatures, load_vocabulary
from textdistill.training.arguments import TrainingArguments

WEIGHTS_FILE = "weights.safetensors"
EMBEDDING = "embedding.weight"
NARROW_TABLE = 32  # columns up to which pooling sums all messages at once (see _add_bag_sums)
FOLD_ROWS = 2048  # table rows per block when folding the head into the table (see _fold)


@dataclass(frozen=True)
class StaticConfig:
    """What the static student is built from and how it reads text."""

    embeddings: str = "teacher"  # teacher | glove | hash
    init_from: str | None = None  # teacher: a saved teacher directory or an encoder alias / path (minilm-l6 when None)
    dim: int = 256  # teacher: PCA dimensions (at most the teacher's width); hash: vector size; glove: always 50
    vocab_size: int = 50_000  # glove: the training words, then GloVe's most frequent words, up to this many
    hash_buckets: int = 1 << 15  # hash: rows of the n-gram table
    ngram_range: tuple[int, int] = (3, 5)  # hash: character n-gram sizes
    bigram_buckets: int = 1 << 15  # hashed word bigrams added to the bag; 0: none
    hidden: int = 0  # 0: linear head; > 0: one ReLU hidden layer of this size
    max_tokens: int = 512  # token ids (and bigram ids) kept per message
    dropout: float = 0.1
    token_dropout: float = 0.0  # training: share of each message's ids left out of its mean (word dropout)
    sif_coefficient: float | None = 1e-3  # teacher: SIF weighting a / (a + p); None: none
    predict_batch_size: int = 256
    seed: int = 0  # random vectors (hash, words GloVe lacks)

    def __post_init__(self) -> None:
        if self.embeddings not in EMBEDDING_KINDS:
            raise TextdistillError(f"static embeddings {self.embeddings!r} is unknown; choose one of: {', '.join(EMBEDDING_KINDS)}")
        if not 0.0 <= self.token_dropout < 1.0:
            raise TextdistillError(f"static student token_dropout must be in [0, 1), not {self.token_dropout}.")
        if self.dim < 1 or self.hidden < 0 or self.bigram_buckets < 0 or self.max_tokens < 1 or self.predict_batch_size < 1:
            raise TextdistillError(
                f"static student settings out of range: dim={self.dim}, hidden={self.hidden}, bigram_buckets={self.bigram_buckets}, "
                f"max_tokens={self.max_tokens}, predict_batch_size={self.predict_batch_size} (sizes must be positive; hidden and bigram_buckets may be 0)"
            )
        object.__setattr__(self, "ngram_range", tuple(self.ngram_range))

    @classmethod
    def from_dict(cls, data: dict) -> StaticConfig:
        return from_settings(cls, data, "static student")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists, so it equals itself after a JSON round trip)."""
        return json.loads(json.dumps(asdict(self)))


def _head_names(hidden: int) -> list[tuple[str, str]]:
    """(weight, bias) parameter names of the head's linear layers, in order."""
    if hidden:
        return [("head.0.weight", "head.0.bias"), ("head.3.weight", "head.3.bias")]
    return [("head.weight", "head.bias")]


def _build_network(table: np.ndarray, active: np.ndarray, n_labels: int, hidden: int, dropout: float, token_dropout: float = 0.0):
    """The torch network: mean of token vectors -> dropout -> head. Defined here so that this
    module imports without torch.

    ``token_dropout`` (training only) leaves each id out of its message's mean with that
    probability (the word dropout of Iyyer et al.'s deep averaging networks): the teacher's
    target stays, so the bag learns not to lean on any single token.

    Only the rows in ``active`` (the ids that occur in the training texts) can change, so
    they alone are parameters: the vectors are ``table`` (a fixed buffer) plus a trainable
    ``embedding.delta`` for the active rows. Adam on ``delta`` from zero moves exactly as Adam on
    the full table from ``table`` would (rows that never occur get no gradient either way; weight
    decay, if any, pulls towards the initial vectors instead of zero), but the optimizer touches
    a few thousand rows instead of the whole table.
    """
    import torch
    from torch import nn
    from torch.nn import functional as F

    class TokenBag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Never changed, so on the CPU it shares the numpy array's memory.
            self.register_buffer("table", torch.from_numpy(table), persistent=False)
            slots = np.full(len(table), len(active), dtype=np.int64)  # inactive ids: the padding row
            slots[active] = np.arange(len(active))
            self.register_buffer("slots", torch.from_numpy(slots), persistent=False)
            # One spare zero row, excluded from gradients, for ids that are not active.
            self.delta = nn.Parameter(torch.zeros(len(active) + 1, table.shape[1]))

        def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
            sizes = torch.diff(offsets, append=offsets.new_tensor([ids.numel()]))
            weights = None
            if self.training and token_dropout > 0:
                weights = (torch.rand(ids.shape, device=ids.device) >= token_dropout).to(self.table.dtype)
                bag = torch.repeat_interleave(torch.arange(len(offsets), device=ids.device), sizes)
                counts = torch.zeros(len(offsets), device=ids.device, dtype=weights.dtype).index_add_(0, bag, weights)
            else:
                counts = sizes.to(self.table.dtype)
            total = F.embedding_bag(ids, self.table, offsets, mode="sum", per_sample_weights=weights)
            total = total + F.embedding_bag(self.slots[ids], self.delta, offsets, mode="sum", per_sample_weights=weights, padding_idx=len(active))
            return total / counts.clamp(min=1).unsqueeze(1)

        def weight(self) -> np.ndarray:
            """The current vectors of every id, as numpy."""
            vectors = table.copy()
            vectors[active] += self.delta[:-1].detach().float().cpu().numpy()
            return vectors

    class StaticNetwork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = TokenBag()
            self.dropout = nn.Dropout(dropout)
            dim = table.shape[1]
            if hidden:
                self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_labels))
            else:
                self.head = nn.Linear(dim, n_labels)

        def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
            return self.head(self.dropout(self.embedding(ids, offsets)))

    return StaticNetwork()


def _add_bag_sums(out: np.ndarray, table: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> None:
    """``out[i] += table[ids of message i].sum(0)``; message i's ids follow message i - 1's.

    ``np.add.reduceat`` sums every message in one call but walks wide rows slowly; for wide
    tables a loop of contiguous ``take(...).sum(0)`` per message is several times faster
    (measured: about 10x at 256 columns, 3x slower at 16).
    """
    ends = np.cumsum(lengths)
    starts = ends - lengths
    if table.shape[1] <= NARROW_TABLE:
        present = lengths > 0  # an empty message would repeat its neighbour's start
        if present.any():
            out[present] += np.add.reduceat(table.take(ids, axis=0), starts[present], axis=0)
        return
    for i in np.flatnonzero(lengths):
        out[i] += table.take(ids[starts[i] : ends[i]], axis=0).sum(axis=0)


_SAFETENSORS_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file, read straight into numpy arrays.

    ``safetensors.numpy.load_file`` holds the whole file as bytes next to the arrays it makes,
    so loading peaks at twice the table; reading each tensor into its array peaks at once.
    A file that is missing, cut short or not safetensors is a :class:`ModelError` naming it.
    """
    require_file(path)
    arrays = {}
    with open(path, "rb") as handle:
        try:
            (header_size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(min(header_size, path.stat().st_size)).decode("utf-8"))
            tensors = {name: (info["dtype"], [int(n) for n in info["shape"]], info["data_offsets"]) for name, info in header.items() if name != "__metadata__"}
        except (struct.error, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ModelError(f"has no readable safetensors header ({type(exc).__name__}: {exc}): it is damaged or cut short.", file=path) from None
        for name, (dtype, shape, (begin, end)) in tensors.items():
            if dtype not in _SAFETENSORS_DTYPES:
                raise ModelError(f"holds tensor {name} of dtype {dtype}, which a static student never saves.", file=path)
            item = np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
            if min(shape, default=0) < 0 or end - begin != item * int(np.prod(shape)) or 8 + header_size + end > path.stat().st_size:
                raise ModelError(f"holds tensor {name} cut short or mis-sized: the file is damaged.", file=path)
            array = np.empty(shape, dtype=_SAFETENSORS_DTYPES[dtype])
            handle.seek(8 + header_size + begin)
            if handle.readinto(memoryview(array).cast("B")) != array.nbytes:
                raise ModelError(f"holds tensor {name} cut short: the file is damaged.", file=path)
            arrays[name] = array
    return arrays
def _fold(table: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``table @ weight.T`` in blocks of rows: one big product would have a multi-threaded BLAS
    touch tens of megabytes of work buffers, raising a small model's peak memory by half."""
    out = np.empty((len(table), weight.shape[0]), dtype=np.float32)
    for start in range(0, len(table), FOLD_ROWS):
        np.matmul(table[start : start + FOLD_ROWS], weight.T, out=out[start : start + FOLD_ROWS])
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # no overflow for large |logits|


@register_model("static")
class StaticStudent(TextClassifier):
    """Mean of token (and word-bigram) vectors -> linear or MLP head; numpy prediction."""

    supports_linear_probe = False

    def __init__(
        self,
        config: StaticConfig | None = None,
        *,
        training: TrainingArguments | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.config = config or StaticConfig()
        self.training = training or self.default_training(self.config.embeddings)
        self.checkpoint_dir = checkpoint_dir
        self.history: list[dict] = []
        self.network = None  # the torch network while training
        self.features: TokenFeatures | None = None
        self._state: dict[str, np.ndarray] | None = None  # numpy weights, by the network's parameter names
        self._synced: tuple | None = None  # the network's parameter versions that _state holds
        self._inference: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], bool] | None = None
        self._device = None

    @staticmethod
    def default_training(embeddings: str = "teacher") -> TrainingArguments:
        """Short epochs, early stopping on validation. Vectors distilled from the teacher move
        slowly (Adam at 1e-3, Model2Vec's rate): at 2e-2 they lost what the teacher knew within
        an epoch on BANKING77 (validation 0.885 at epoch 1, then down; 0.908 at 1e-3). GloVe and
        random vectors have less to keep and learn faster."""
        return TrainingArguments(
            epochs=15,
            min_steps=10_000,
            batch_size=32,
            learning_rate=1e-3 if embeddings == "teacher" else 5e-2,
            head_learning_rate=1e-2 if embeddings == "teacher" else 5e-2,
            weight_decay=0.0,
            warmup_ratio=0.05,
            linear_probe=False,
            early_stopping_patience=3,
            checkpoint_every=500,
            mixed_precision=False,
        )

    @property
    def device(self):
        """The torch device training runs on (torch is imported on first use)."""
        if self._device is None:
            from textdistill.models.transformer import pick_device

            self._device = pick_device(self.training.device)
        return self._device

    @device.setter
    def device(self, value) -> None:
        self._device = value

    # -- building and training -------------------------------------------------------------
    def training_config(self) -> dict:
        return {"static": self.config.to_dict()}

    def build_network(self, texts: Sequence[str]) -> None:
        """A fresh vocabulary and initial vectors for ``texts`` (see the module doc), a zero
        vector per bigram bucket, and a new head."""
        config = self.config
        texts = list(texts)
        vocabulary, vectors = initial_vectors(
            config.embeddings, texts, init_from=config.init_from, dim=config.dim, vocab_size=config.vocab_size,
            hash_buckets=config.hash_buckets, ngram_range=config.ngram_range, sif_coefficient=config.sif_coefficient,
            seed=config.seed, device=self.training.device,
        )
        self.features = TokenFeatures(vocabulary, config.bigram_buckets, max_tokens=config.max_tokens)
        # Bigram vectors start at zero: at first the bag is the token vectors (scaled), and
        # bigrams learn only what tokens do not already say.
        table = np.concatenate([vectors, np.zeros((config.bigram_buckets, vectors.shape[1]), dtype=np.float32)])
        active = np.unique(np.concatenate([ids for ids, _ in self.features.streams(texts)]))
        self.network = _build_network(table, active, len(self._space()), config.hidden, config.dropout, config.token_dropout).to(self.device)
        self._state, self._synced, self._inference = None, None, None

    def _fit(self, texts: list[str], label_sets: Sequence[Sequence[str]], validation=None) -> None:
        from textdistill.training.finetune import FineTuner

        self.history = FineTuner(self.training, self.checkpoint_dir).train(self, texts, label_sets, validation)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Per message: its token ids, then its bigram ids (offset after the token table)."""
        return self._features().encode(texts)

    def collate(self, ids: Sequence[list[int]]) -> dict:
        """EmbeddingBag inputs: all ids in one tensor and where each message starts."""
        import torch

        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
        flat = torch.tensor(list(chain.from_iterable(ids)), dtype=torch.long)
        offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64))
        return {"ids": flat.to(self.device), "offsets": offsets.to(self.device)}

    # -- predicting (numpy) ----------------------------------------------------------------
    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (n, L), in batches of ``predict_batch_size`` messages."""
        texts = list(texts)
        table, layers, folded = self.inference_weights()
        logits = np.empty((len(texts), len(self._space())), dtype=np.float32)
        size = self.config.predict_batch_size
        for start in range(0, len(texts), size):
            x = self._pool(texts[start : start + size], table)
            for k, (weight, bias) in enumerate(layers):
                if k:
                    x = np.maximum(x, 0.0, out=x)
                x = x + bias if k == 0 and folded else x @ weight.T + bias
            logits[start : start + size] = x
        return logits

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        logits = self.decision_function(texts)
        return _sigmoid(logits) if self._space().multi_label else _softmax(logits)

    def _pool(self, texts: list[str], table: np.ndarray) -> np.ndarray:
        """Mean of ``table`` rows over each message's ids (zeros for a message without any)."""
        pooled = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        counts = np.zeros(len(texts), dtype=np.int64)
        for ids, lengths in self._features().streams(texts):
            counts += lengths
            _add_bag_sums(pooled, table, ids, lengths)
        pooled /= np.maximum(counts, 1)[:, None]
        return pooled

    def inference_weights(self) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], bool]:
        """(table, head layers, whether the first layer's weight is folded into the table)."""
        state = self._numpy_state()
        if self._inference is None:
            layers = [(state[w], state[b]) for w, b in _head_names(self.config.hidden)]
            table = state[EMBEDDING]
            first = layers[0][0]
            folded = first.shape[0] < first.shape[1]
            if folded:  # a mean is linear: mean(E[ids]) @ W.T == mean((E @ W.T)[ids])
                table = _fold(table, first)
            self._inference = (table, layers, folded)
        return self._inference

    def _numpy_state(self) -> dict[str, np.ndarray]:
        """The weights as numpy arrays, copied from the network whenever it has changed (so
        that validation scores during training are the current network's)."""
        if self.network is not None:
            parameters = dict(self.network.named_parameters())
            versions = tuple((name, p._version) for name, p in parameters.items())
            if versions != self._synced:
                self._state = {EMBEDDING: self.network.embedding.weight()}
                self._state.update({name: p.detach().float().cpu().numpy().copy() for name, p in parameters.items() if name.startswith("head.")})
                self._synced, self._inference = versions, None
        if self._state is None:
            raise TextdistillError("this static student is not trained yet: call fit() or load() first.")
        return self._state

    # -- size ------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Width of the token vectors."""
        return int(self._numpy_state()[EMBEDDING].shape[1])

    @property
    def n_params(self) -> int:
        return int(sum(array.size for array in self._numpy_state().values()))

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path, *, config: dict | None = None, training_data: dict | None = None, metrics: dict | None = None) -> Path:
        config = {
            "static": self.config.to_dict(),
            "features": self._features().describe(),
            "dim": self.dim,
            "training": {"arguments": self.training.to_dict(), "history": self.history},
            **(config or {}),
        }
        return super().save(directory, config=config, training_data=training_data or {}, metrics=metrics)

    def _save_weights(self, directory: Path) -> None:
        save_arrays(self._numpy_state(), directory / WEIGHTS_FILE)
        self._features().vocabulary.save(directory)

    @classmethod
    def _load_weights(cls, directory: Path, manifest: Manifest) -> Self:
        config = StaticConfig.from_dict(manifest.config.get("static", {}))
        arguments = manifest.config.get("training", {}).get("arguments")
        model = cls(config, training=TrainingArguments.from_dict(arguments) if arguments else None)
        model.features = TokenFeatures(load_vocabulary(directory), config.bigram_buckets, max_tokens=config.max_tokens)
        state = read_weights(directory / WEIGHTS_FILE)
        n_labels, hidden = len(manifest.labels), config.hidden
        dim = state[EMBEDDING].shape[-1] if EMBEDDING in state else None
        layers = [(hidden, dim), (n_labels, hidden)] if hidden else [(n_labels, dim)]
        expected = {EMBEDDING: (model.features.size, dim)}
        for (weight, bias), (rows, columns) in zip(_head_names(hidden), layers):
            expected.update({weight: (rows, columns), bias: (rows,)})
        check_shapes(directory / WEIGHTS_FILE, state, expected)
        model._state = state
        return model

    def _features(self) -> TokenFeatures:
        if self.features is None:
            raise TextdistillError("this static student has no vocabulary yet: call fit() or load() first.")
        return self.features
