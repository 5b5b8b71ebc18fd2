"""Texts to token ids, for students that embed tokens: the static bag and the BiLSTM.

Three vocabularies, all with the same small interface (:class:`Vocabulary`): ``encode(texts)``
gives one list of ids in ``[0, size)`` per text, ``save(directory)`` writes it next to a model,
:func:`load_vocabulary` reads it back.

- :class:`SubwordVocabulary`: the teacher's own tokenizer, read from its ``tokenizer.json`` with
  the ``tokenizers`` library (not transformers), so a student can be initialised from the
  teacher's token vectors and still predict without torch.
- :class:`WordVocabulary`: lowercase regex words (:func:`split_words`) with a table built from
  training texts (and, say, the most frequent GloVe words); ids 0 and 1 are ``[PAD]`` and ``[UNK]``.
- :class:`HashVocabulary`: no table at all (EELBERT's "dynamic embeddings", fastText's subwords):
  each word becomes the hashes of its character n-grams, modulo a number of buckets.

:class:`WordBigrams` adds hashed pairs of consecutive words (fastText's word order signal), and
:class:`TokenFeatures` puts a vocabulary and bigrams together as one id space: token ids first,
then ``vocabulary.size + bigram id``.

Every hash is a CRC-32 (``zlib.crc32``) of UTF-8 text, never Python's ``hash()``, which is salted
per process: a model saved in one process must get the same ids in another.
"""

from __future__ import annotations

import json
import re
import zlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from textdistill.errors import ModelError, TextdistillError

VOCABULARY_FILE = "vocabulary.json"
TOKENIZER_FILE = "tokenizer.json"
PAD, UNK = "[PAD]", "[UNK]"
# Words (letters, digits, underscore) and single punctuation marks, with English clitics split
# off the way GloVe's corpus was tokenised: "don't!" -> do n't !, "it's" -> it 's
WORD_PATTERN = re.compile(r"\w+(?=n't\b)|n't\b|'(?:s|m|d|ll|re|ve)\b|\w+|[^\w\s]")
_CACHE_LIMIT = 1 << 20  # memoised words per vocabulary before the cache starts afresh


def split_words(text: str) -> list[str]:
    """Lowercase words and punctuation marks of ``text``, in order (a typographic apostrophe
    counts as ``'``)."""
    return WORD_PATTERN.findall(text.lower().replace("\u2019", "'"))


def stable_hash(text: str) -> int:
    """A 32-bit hash of ``text`` that is the same in every process and on every platform."""
    return zlib.crc32(text.encode("utf-8"))


def flatten(id_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """One int64 array of all ids and the (n,) number of ids per list."""
    lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=len(id_lists))
    flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


def head_tail_ids(ids: list[int], budget: int, head_fraction: float) -> list[int]:
    """Keep ``budget`` token ids: the first ``head_fraction`` of them and the rest from the end."""
    if len(ids) <= budget:
        return ids
    head = int(round(budget * head_fraction))
    return ids[:head] + ids[len(ids) - (budget - head) :]


def default_stride(budget: int) -> int:
    """Text tokens between window starts when none is configured: 3/4 of a window, so that
    neighbours share a quarter and a phrase cut by one window's edge is whole in the next."""
    return max(1, budget * 3 // 4)


def window_starts(n_tokens: int, budget: int, stride: int, max_windows: int) -> list[int]:
    """Where each window of ``budget`` tokens starts in a text of ``n_tokens``: one window when
    it fits, else one every ``stride`` tokens and a last one ending at the text's end, so every
    token is in a window and neighbours overlap by at least ``budget - stride`` tokens.

    Beyond ``max_windows`` the first ``max_windows - 1`` and the last are kept: a business
    email's new text comes first (replies quote the thread below it), and the last window holds
    the end that head+tail truncation kept, so windows never read less than head+tail does.
    """
    if not 1 <= stride <= budget:
        raise ValueError(f"a stride of {stride} tokens would skip text between windows of {budget}: give 1 to {budget}")
    if n_tokens <= budget:
        return [0]
    starts = [*range(0, n_tokens - budget, stride), n_tokens - budget]
    if len(starts) > max_windows:
        starts = starts[: max_windows - 1] + starts[-1:]
    return starts


def windows_ids(ids: list[int], budget: int, stride: int, max_windows: int) -> list[list[int]]:
    """``ids`` in the windows of :func:`window_starts`."""
    return [ids[start : start + budget] for start in window_starts(len(ids), budget, stride, max_windows)]


def framed_windows(ids: list[int], prefix: Sequence[int], suffix: Sequence[int], budget: int, stride: int, max_windows: int) -> list[int]:
    """The windows of ``ids`` (:func:`windows_ids`), each framed by the special tokens ``prefix``
    and ``suffix``, joined end to end; a text that fits is ``prefix + ids + suffix``."""
    return [i for window in windows_ids(ids, budget, stride, max_windows) for i in (*prefix, *window, *suffix)]


def window_rows(counts: Sequence[int]) -> np.ndarray:
    """(messages, most windows) int64: where each message's windows are when the windows of
    messages of ``counts`` windows are stacked in order, -1 past a message's last."""
    counts = np.asarray(counts, dtype=np.int64)
    columns = np.arange(int(counts.max(initial=0)), dtype=np.int64)
    first = np.cumsum(counts) - counts
    return np.where(columns < counts[:, None], first[:, None] + columns, -1)


def split_windows(ids: Sequence[int], max_length: int) -> list[Sequence[int]]:
    """The windows of a message whose windows (each framed by special tokens) were joined end to
    end: a message of several windows has every one ``max_length`` long, so cutting every
    ``max_length`` ids gives them back; a shorter message is one window."""
    if len(ids) > max_length and len(ids) % max_length:
        raise ValueError(f"{len(ids)} ids are not whole windows of {max_length}: they were not made by the same windowing settings")
    return [ids[start : start + max_length] for start in range(0, max(len(ids), 1), max_length)]


class Vocabulary(ABC):
    """Maps texts to token ids in ``[0, size)``.

    ``pad_id`` is an id that never stands for text (for padding a batch of sequences) and
    ``unk_id`` the id of unknown tokens; either is ``None`` where a vocabulary has none.
    """

    kind: ClassVar[str]
    pad_id: int | None = None
    unk_id: int | None = None

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of ids: rows of an embedding table over this vocabulary."""

    @abstractmethod
    def encode(self, texts: Sequence[str], *, drop_unknown: bool = False) -> list[list[int]]:
        """Token ids of each text, in order; ``drop_unknown`` leaves out ``unk_id``."""

    def tokens(self) -> list[str]:
        """The token of every id, in id order (for looking up pretrained vectors)."""
        raise TextdistillError(f"a {self.kind} vocabulary has no token table")

    def describe(self) -> dict[str, Any]:
        """The vocabulary's settings as JSON (no token list): for manifests and fingerprints."""
        return {"kind": self.kind, "size": self.size}

    def save(self, directory: str | Path) -> None:
        """Write the vocabulary into ``directory`` (``vocabulary.json``, plus ``tokenizer.json`` for subwords)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = {**self.describe(), **self._extra_json()}
        (directory / VOCABULARY_FILE).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    def _extra_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    @abstractmethod
    def _from_saved(cls, directory: Path, data: dict[str, Any]) -> Vocabulary: ...


def load_vocabulary(directory: str | Path) -> Vocabulary:
    """The vocabulary that :meth:`Vocabulary.save` wrote into ``directory``; a :class:`ModelError`
    naming the file when it is missing, damaged or not a vocabulary."""
    directory = Path(directory)
    path = directory / VOCABULARY_FILE
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"is missing: {directory} holds no saved vocabulary.", file=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"is not valid JSON ({exc}): it is damaged or cut short.", file=path) from None
    kinds = {cls.kind: cls for cls in (SubwordVocabulary, WordVocabulary, HashVocabulary)}
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str) or kind not in kinds:
        raise ModelError(f"names vocabulary kind {kind!r}; known kinds: {', '.join(kinds)}.", file=path)
    try:
        vocabulary = kinds[kind]._from_saved(directory, data)
    except ModelError:
        raise
    except (TextdistillError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"is not a readable {kind} vocabulary ({type(exc).__name__}: {exc}): it is damaged.", file=path) from None
    if vocabulary.size != data.get("size", vocabulary.size):
        raise ModelError(f"says {data['size']} tokens but the files hold {vocabulary.size}: the directory is damaged.", file=path)
    return vocabulary


# --------------------------------------------------------------------------- subwords


class SubwordVocabulary(Vocabulary):
    """A teacher's tokenizer (WordPiece, BPE, Unigram) from its ``tokenizer.json``.

    Texts are encoded without special tokens; :meth:`with_special_tokens` adds them around a
    sequence the way the teacher saw its inputs.
    """

    kind = "subword"

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        # Students cut and pad ids themselves; a truncation or padding setting inherited from
        # the teacher's tokenizer would silently change what they see.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        model_unk = getattr(tokenizer.model, "unk_token", None)
        self.unk_id = tokenizer.token_to_id(model_unk) if isinstance(model_unk, str) else None
        self.pad_id = next((i for t in (PAD, "<pad>", "[pad]") if (i := tokenizer.token_to_id(t)) is not None), None)
        self._prefix, self._suffix = self._special_tokens()
        self._size = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1) + 1

    @classmethod
    def from_pretrained(cls, source: str | Path) -> SubwordVocabulary:
        """Read ``tokenizer.json`` from a model directory (or the file itself)."""
        from tokenizers import Tokenizer

        path = Path(source)
        path = path / TOKENIZER_FILE if path.is_dir() else path
        if not path.is_file():
            raise TextdistillError(
                f"{path} is missing. A subword vocabulary reads the teacher's fast tokenizer file. "
                "What to do: point to a model directory saved with a fast (Rust) tokenizer; "
                "`AutoTokenizer.from_pretrained(dir).save_pretrained(dir)` writes one."
            )
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception for a file it cannot parse
            raise ModelError(f"is not a readable tokenizer file ({exc}): it is damaged or cut short.", file=path) from None
        return cls(tokenizer)

    @property
    def size(self) -> int:
        # Not the number of tokens: a vocabulary may skip ids (a token listed twice keeps its last id).
        return self._size

    def encode(self, texts: Sequence[str], *, drop_unknown: bool = False) -> list[list[int]]:
        encodings = self._tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        if drop_unknown and self.unk_id is not None:
            unk = self.unk_id
            return [[i for i in e.ids if i != unk] for e in encodings]
        return [e.ids for e in encodings]

    def tokens(self) -> list[str]:
        return [self._tokenizer.id_to_token(i) or "" for i in range(self.size)]

    @property
    def special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a text, e.g. ``([CLS], [SEP])``."""
        return list(self._prefix), list(self._suffix)

    def with_special_tokens(self, ids: Sequence[int]) -> list[int]:
        """``ids`` framed by the tokenizer's special tokens, e.g. ``[CLS] ids [SEP]``."""
        return [*self._prefix, *ids, *self._suffix]

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a single text."""
        bare = self._tokenizer.encode("a", add_special_tokens=False).ids
        full = self._tokenizer.encode("a", add_special_tokens=True).ids
        for start in range(len(full) - len(bare) + 1):
            if full[start : start + len(bare)] == bare:
                return full[:start], full[start + len(bare) :]
        raise TextdistillError("cannot locate the special tokens of this tokenizer: it changes the text itself when adding them")

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        self._tokenizer.save(str(Path(directory) / TOKENIZER_FILE), pretty=True)

    @classmethod
    def _from_saved(cls, directory: Path, data: dict[str, Any]) -> SubwordVocabulary:
        return cls.from_pretrained(directory / TOKENIZER_FILE)


# --------------------------------------------------------------------------- words


class _WordLevel(Vocabulary):
    """A vocabulary whose ids come from the words of :func:`split_words`, word by word."""

    def encode(self, texts: Sequence[str], *, drop_unknown: bool = False) -> list[list[int]]:
        return self.encode_words([split_words(text) for text in texts], drop_unknown=drop_unknown)

    @abstractmethod
    def encode_words(self, word_lists: Sequence[Sequence[str]], *, drop_unknown: bool = False) -> list[list[int]]:
        """Ids of texts already split into words (saves a second split when bigrams need the words too)."""


class WordVocabulary(_WordLevel):
    """Lowercase words with a table; ``[PAD]`` is id 0, ``[UNK]`` id 1, then the words."""

    kind = "word"
    pad_id = 0
    unk_id = 1

    def __init__(self, words: Iterable[str]) -> None:
        self._tokens = [PAD, UNK]
        for word in words:
            if word not in (PAD, UNK):
                self._tokens.append(word)
        self._index = {token: i for i, token in enumerate(self._tokens)}
        if len(self._index) != len(self._tokens):
            raise TextdistillError("a word vocabulary lists the same word twice")

    @classmethod
    def build(
        cls, texts: Iterable[str], *, min_count: int = 1, max_size: int | None = None, include: Iterable[str] = ()
    ) -> WordVocabulary:
        """Words of ``texts`` seen at least ``min_count`` times, most frequent first (ties in
        alphabetical order), then the words of ``include`` not yet present, up to ``max_size``
        words in all (not counting ``[PAD]`` and ``[UNK]``)."""
        counts = Counter(chain.from_iterable(split_words(text) for text in texts))
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        seen = set(words)
        words += [w for w in dict.fromkeys(include) if w not in seen]
        return cls(words[:max_size] if max_size is not None else words)

    @property
    def size(self) -> int:
        return len(self._tokens)

    def tokens(self) -> list[str]:
        return list(self._tokens)

    def encode_words(self, word_lists: Sequence[Sequence[str]], *, drop_unknown: bool = False) -> list[list[int]]:
        index = self._index
        if drop_unknown:
            return [[i for w in words if (i := index.get(w)) is not None] for words in word_lists]
        return [[index.get(w, 1) for w in words] for words in word_lists]

    def _extra_json(self) -> dict[str, Any]:
        return {"tokens": self._tokens[2:]}

    @classmethod
    def _from_saved(cls, directory: Path, data: dict[str, Any]) -> WordVocabulary:
        tokens = data["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise TypeError("its tokens are not a list of strings")
        return cls(tokens)


class HashVocabulary(_WordLevel):
    """Hashed character n-grams of words, no table (EELBERT, fastText subwords).

    A word ``w`` is read as ``<w>``; its ids are the hashes, modulo ``buckets``, of ``<w>`` itself
    (when ``whole_words``) and of its character n-grams for n in ``ngram_range``. Words never
    seen in training still get ids, and the table has ``buckets`` rows whatever the vocabulary.
    """

    kind = "hash"

    def __init__(self, buckets: int = 1 << 15, ngram_range: tuple[int, int] = (3, 5), whole_words: bool = True) -> None:
        low, high = ngram_range
        if buckets < 1 or not 1 <= low <= high:
            raise TextdistillError(f"a hash vocabulary needs buckets >= 1 and 1 <= n-gram sizes ordered, got {buckets}, {ngram_range}")
        self.buckets = int(buckets)
        self.ngram_range = (int(low), int(high))
        self.whole_words = bool(whole_words)
        self._cache: dict[str, list[int]] = {}

    @property
    def size(self) -> int:
        return self.buckets

    def word_ids(self, word: str) -> list[int]:
        """The ids of one (lowercase) word."""
        ids = self._cache.get(word)
        if ids is None:
            marked = f"<{word}>"
            low, high = self.ngram_range
            grams = [marked] if self.whole_words else []
            for n in range(low, high + 1):
                grams += [marked[i : i + n] for i in range(len(marked) - n + 1) if marked[i : i + n] != marked]
            ids = [stable_hash(g) % self.buckets for g in grams]
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    def encode_grouped(self, texts: Sequence[str]) -> list[list[list[int]]]:
        """Ids per word per text (for models that compose a word's vector from its n-grams)."""
        return [[self.word_ids(w) for w in split_words(text)] for text in texts]

    def encode_words(self, word_lists: Sequence[Sequence[str]], *, drop_unknown: bool = False) -> list[list[int]]:
        word_ids = self.word_ids
        return [list(chain.from_iterable(word_ids(w) for w in words)) for words in word_lists]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ngram_range": list(self.ngram_range), "whole_words": self.whole_words}

    @classmethod
    def _from_saved(cls, directory: Path, data: dict[str, Any]) -> HashVocabulary:
        size, (low, high), whole_words = data["size"], data["ngram_range"], data["whole_words"]
        if not all(type(n) is int for n in (size, low, high)) or not isinstance(whole_words, bool):
            raise TypeError("its size and n-gram sizes must be whole numbers, whole_words true or false")
        return cls(size, (low, high), whole_words)


# --------------------------------------------------------------------------- bigrams


class WordBigrams:
    """Hashed pairs of consecutive words, ids in ``[0, buckets)``.

    A word's key is its CRC-32; a pair's id mixes the two keys with 64-bit multiplications
    (vectorised over a whole batch), so order matters: "not good" and "good not" differ.
    """

    _LEFT = np.uint64(0x9E3779B97F4A7C15)
    _RIGHT = np.uint64(0xC2B2AE3D27D4EB4F)

    def __init__(self, buckets: int) -> None:
        if buckets < 1:
            raise TextdistillError(f"word bigrams need at least one bucket, got {buckets}")
        self.buckets = int(buckets)
        self._keys: dict[str, int] = {}

    def flat(self, word_lists: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Bigram ids of all texts in one int64 array, and the (n,) number per text."""
        if len(self._keys) >= _CACHE_LIMIT:
            self._keys.clear()
        key = self._key
        keys, lengths = flatten([[key(w) for w in words] for words in word_lists])
        counts = np.maximum(lengths - 1, 0)
        if keys.size < 2:
            return np.zeros(0, dtype=np.int64), counts
        keys = keys.astype(np.uint64)
        mixed = keys[:-1] * self._LEFT ^ keys[1:] * self._RIGHT
        mixed ^= mixed >> np.uint64(31)
        ids = (mixed % np.uint64(self.buckets)).astype(np.int64)
        # Pairs whose first word is the last of its text straddle two texts: leave them out.
        ends = np.cumsum(lengths)[lengths > 0] - 1
        keep = np.ones(keys.size - 1, dtype=bool)
        keep[ends[ends < keys.size - 1]] = False
        return ids[keep], counts

    def _key(self, word: str) -> int:
        key = self._keys.get(word)
        if key is None:
            key = self._keys[word] = stable_hash(word)
        return key

    def encode_words(self, word_lists: Sequence[Sequence[str]]) -> list[list[int]]:
        """Bigram ids per text."""
        ids, counts = self.flat(word_lists)
        return [part.tolist() for part in np.split(ids, np.cumsum(counts)[:-1])] if len(word_lists) else []

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.encode_words([split_words(text) for text in texts])


# --------------------------------------------------------------------------- together


class TokenFeatures:
    """A vocabulary's token ids plus hashed word bigrams as one id space of ``size`` ids.

    Bigram ids come after the vocabulary: ``vocabulary.size + bigram id``. At most
    ``max_tokens`` token ids and ``max_tokens`` bigram ids are kept per text (the first ones).
    Unknown tokens are dropped when ``drop_unknown`` (a bag of vectors is better off without them).
    """

    def __init__(self, vocabulary: Vocabulary, bigram_buckets: int = 0, *, max_tokens: int | None = None, drop_unknown: bool = True) -> None:
        self.vocabulary = vocabulary
        self.bigrams = WordBigrams(bigram_buckets) if bigram_buckets else None
        self.max_tokens = max_tokens
        self.drop_unknown = drop_unknown

    @property
    def size(self) -> int:
        return self.vocabulary.size + (self.bigrams.buckets if self.bigrams else 0)

    def streams(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(ids, lengths)`` per kind of feature (tokens, then bigrams if any): all texts' ids
        in one int64 array, bigram ids already offset, and the (n,) number of ids per text."""
        texts = list(texts)
        cap = self.max_tokens
        vocabulary = self.vocabulary
        words = [split_words(t) for t in texts] if self.bigrams or isinstance(vocabulary, _WordLevel) else None
        if isinstance(vocabulary, _WordLevel):
            token_lists = vocabulary.encode_words(words if cap is None else [w[:cap] for w in words], drop_unknown=self.drop_unknown)
        else:
            token_lists = vocabulary.encode(texts, drop_unknown=self.drop_unknown)
        if cap is not None:
            token_lists = [ids[:cap] for ids in token_lists]
        result = [flatten(token_lists)]
        if self.bigrams is not None:
            ids, counts = self.bigrams.flat(words if cap is None else [w[: cap + 1] for w in words])
            result.append((ids + vocabulary.size, counts))
        return result

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Per text: its token ids, then its offset bigram ids."""
        streams = self.streams(texts)
        parts = [np.split(ids, np.cumsum(lengths)[:-1]) if len(lengths) else [] for ids, lengths in streams]
        return [np.concatenate(row).tolist() for row in zip(*parts)]

    def describe(self) -> dict[str, Any]:
        return {
            "vocabulary": self.vocabulary.describe(),
            "bigram_buckets": self.bigrams.buckets if self.bigrams else 0,
            "max_tokens": self.max_tokens,
            "drop_unknown": self.drop_unknown,
        }
