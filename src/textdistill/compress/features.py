"""Texts to the input arrays of an exported graph, without torch.

An ONNX graph starts at token ids; everything before them (tokenizing, cutting long messages,
padding) happens here, in numpy and ``tokenizers``, exactly as the model it was exported from
did it. Each kind of model reads text one way:

- :class:`SubwordSequence` (transformer students and teachers): the encoder's tokenizer, long
  messages cut to head and tail or read in windows, special tokens, padding with the tokenizer's
  pad id and an attention mask (and, for windows, which rows are each message's windows);
- :class:`TokenSequence` (BiLSTM): vocabulary ids in order, at most ``max_tokens``, and each
  message's length (an empty message reads as one padding id);
- :class:`TokenBag` (static): token and hashed word-bigram ids, and each message's count.

Batches are padded to their own longest message only (see :meth:`Featurizer.batches`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from textdistill.errors import TextdistillError
from textdistill.students.tokens import (
    SubwordVocabulary,
    TokenFeatures,
    Vocabulary,
    framed_windows,
    head_tail_ids,
    load_vocabulary,
    split_windows,
    window_rows,
)


class Featurizer(ABC):
    """Turns texts into the named int64 arrays a graph takes."""

    kind: ClassVar[str]
    input_names: tuple[str, ...]  # the graph's inputs, in order

    @abstractmethod
    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids of each text, as the graph's first input holds them before padding."""

    @abstractmethod
    def pad(self, ids: Sequence[list[int]]) -> dict[str, np.ndarray]:
        """The graph's inputs for one batch, padded to its longest message."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """What :func:`load_featurizer` needs besides the vocabulary files (JSON-ready)."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the vocabulary files into ``directory``."""

    def batches(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """``(rows, inputs)`` for batches of messages of similar token count: sorting by length
        first means each batch pads only to its own longest message."""
        ids = self.token_ids(texts)
        order = np.argsort([len(i) for i in ids], kind="stable")
        for start in range(0, len(ids), batch_size):
            rows = order[start : start + batch_size]
            yield rows, self.pad([ids[i] for i in rows])


def _ids_and_lengths(ids: Sequence[list[int]], names: tuple[str, str]) -> dict[str, np.ndarray]:
    """Zero-padded ids (at least one column) and the number of real ids per row."""
    lengths = np.array([len(i) for i in ids], dtype=np.int64)
    padded = np.zeros((len(ids), max(1, int(lengths.max(initial=0)))), dtype=np.int64)
    for row, seq in enumerate(ids):
        padded[row, : len(seq)] = seq
    return {names[0]: padded, names[1]: lengths}


class SubwordSequence(Featurizer):
    """A transformer's input: ``[CLS] head … tail [SEP]`` or, with ``long_messages="windows"``,
    ``[CLS] window [SEP]`` rows, padded, with an attention mask; windows add ``windows``
    (messages, most windows): the rows of each message's windows, -1 past its last."""

    kind = "subword_sequence"

    def __init__(
        self,
        vocabulary: SubwordVocabulary,
        *,
        max_length: int,
        head_fraction: float,
        pad_id: int,
        long_messages: str = "head_tail",
        stride: int | None = None,
        max_windows: int | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self.max_length = max_length
        self.head_fraction = head_fraction
        self.pad_id = pad_id
        self.long_messages = long_messages
        self.stride = stride
        self.max_windows = max_windows
        self._budget = max_length - len(vocabulary.with_special_tokens([]))
        if self._budget < 1:
            raise TextdistillError(f"max_length {max_length} leaves no room for text between the special tokens.")
        if long_messages == "windows" and (stride is None or max_windows is None):
            raise TextdistillError("windowed inputs need their stride and max_windows: the export's settings are incomplete.")

    @property
    def windows(self) -> bool:
        return self.long_messages == "windows"

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("input_ids", "attention_mask", "windows") if self.windows else ("input_ids", "attention_mask")

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Per message, its ids with special tokens; windows joined end to end, as the
        transformer's own ``token_ids`` gives them."""
        encoded = self.vocabulary.encode(texts)
        if self.windows:
            prefix, suffix = self.vocabulary.special_tokens
            return [framed_windows(ids, prefix, suffix, self._budget, self.stride, self.max_windows) for ids in encoded]
        return [self.vocabulary.with_special_tokens(head_tail_ids(ids, self._budget, self.head_fraction)) for ids in encoded]

    def pad(self, ids: Sequence[list[int]]) -> dict[str, np.ndarray]:
        messages = [split_windows(seq, self.max_length) if self.windows else [seq] for seq in ids]
        rows = [window for windows in messages for window in windows]
        longest = max(len(row) for row in rows)
        input_ids = np.full((len(rows), longest), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), longest), dtype=np.int64)
        for row, seq in enumerate(rows):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if self.windows:
            inputs["windows"] = window_rows([len(windows) for windows in messages])
        return inputs

    def settings(self) -> dict[str, Any]:
        settings = {"max_length": self.max_length, "head_fraction": self.head_fraction, "pad_id": self.pad_id}
        if self.windows:
            settings.update(long_messages=self.long_messages, stride=self.stride, max_windows=self.max_windows)
        return settings

    def save(self, directory: Path) -> None:
        self.vocabulary.save(directory)

    @classmethod
    def from_saved(cls, vocabulary: Vocabulary, settings: dict[str, Any]) -> SubwordSequence:
        if not isinstance(vocabulary, SubwordVocabulary):
            raise TextdistillError(f"a transformer's inputs need its subword tokenizer, not a {vocabulary.kind} vocabulary.")
        # Exports made before windows existed record no long_messages: they cut to head and tail.
        return cls(
            vocabulary,
            max_length=settings["max_length"],
            head_fraction=settings["head_fraction"],
            pad_id=settings["pad_id"],
            long_messages=settings.get("long_messages", "head_tail"),
            stride=settings.get("stride"),
            max_windows=settings.get("max_windows"),
        )


class TokenSequence(Featurizer):
    """A BiLSTM's input: vocabulary ids in order (at most ``max_tokens``) and their count."""

    kind = "token_sequence"
    input_names = ("input_ids", "lengths")

    def __init__(self, vocabulary: Vocabulary, *, max_tokens: int) -> None:
        self.vocabulary = vocabulary
        self.max_tokens = max_tokens

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [ids[: self.max_tokens] or [0] for ids in self.vocabulary.encode(list(texts))]

    def pad(self, ids: Sequence[list[int]]) -> dict[str, np.ndarray]:
        return _ids_and_lengths(ids, self.input_names)

    def settings(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens}

    def save(self, directory: Path) -> None:
        self.vocabulary.save(directory)

    @classmethod
    def from_saved(cls, vocabulary: Vocabulary, settings: dict[str, Any]) -> TokenSequence:
        return cls(vocabulary, max_tokens=settings["max_tokens"])


class TokenBag(Featurizer):
    """A static student's input: token and bigram ids in any order, and their count (may be 0)."""

    kind = "token_bag"
    input_names = ("input_ids", "lengths")

    def __init__(self, features: TokenFeatures) -> None:
        self.features = features

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.features.encode(texts)

    def pad(self, ids: Sequence[list[int]]) -> dict[str, np.ndarray]:
        return _ids_and_lengths(ids, self.input_names)

    def settings(self) -> dict[str, Any]:
        described = self.features.describe()
        return {key: described[key] for key in ("bigram_buckets", "max_tokens", "drop_unknown")}

    def save(self, directory: Path) -> None:
        self.features.vocabulary.save(directory)

    @classmethod
    def from_saved(cls, vocabulary: Vocabulary, settings: dict[str, Any]) -> TokenBag:
        return cls(
            TokenFeatures(vocabulary, settings["bigram_buckets"], max_tokens=settings["max_tokens"], drop_unknown=settings["drop_unknown"])
        )


FEATURIZERS: dict[str, type] = {cls.kind: cls for cls in (SubwordSequence, TokenSequence, TokenBag)}


def load_featurizer(directory: Path, description: dict[str, Any]) -> Featurizer:
    """The featurizer ``{"kind": ..., **settings}`` over the vocabulary saved in ``directory``."""
    kind = description.get("kind")
    if kind not in FEATURIZERS:
        raise TextdistillError(f"{directory}: unknown input kind {kind!r} (known: {', '.join(FEATURIZERS)}); upgrade textdistill.")
    return FEATURIZERS[kind].from_saved(load_vocabulary(directory), description)
