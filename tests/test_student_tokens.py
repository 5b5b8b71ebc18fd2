"""Token vocabularies of the students: deterministic ids, stable hashes, bigrams placed after the
token table, exact save / load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib

import pytest

from textdistill.errors import TextdistillError
from textdistill.students.tokens import (
    HashVocabulary,
    SubwordVocabulary,
    TokenFeatures,
    WordBigrams,
    WordVocabulary,
    load_vocabulary,
    split_words,
    stable_hash,
)

TEXTS = ["Where is my parcel? It was due on Monday.", "please refund the charge", "", "Refund refund REFUND!", "   "]


def test_split_words_lowercases_and_splits_punctuation_and_clitics():
    assert split_words("Don't! It\u2019s MY parcel, #42") == ["do", "n't", "!", "it", "'s", "my", "parcel", ",", "#", "42"]
    assert split_words("") == [] and split_words(" \n\t") == []


def test_stable_hash_is_crc32():
    assert stable_hash("<refund>") == zlib.crc32("<refund>".encode("utf-8"))
    assert stable_hash("caf\u00e9") == zlib.crc32("caf\u00e9".encode("utf-8"))


# -- words -------------------------------------------------------------------------------------


def test_word_vocabulary_orders_by_frequency_then_alphabet_and_adds_included_words():
    vocabulary = WordVocabulary.build(["b a b", "c a b"], include=["zebra", "a", "the"])
    assert vocabulary.tokens() == ["[PAD]", "[UNK]", "b", "a", "c", "zebra", "the"]
    assert (vocabulary.pad_id, vocabulary.unk_id, vocabulary.size) == (0, 1, 7)
    assert WordVocabulary.build(["b a b", "c a b"], min_count=2, max_size=1).tokens() == ["[PAD]", "[UNK]", "b"]


def test_word_vocabulary_maps_or_drops_unknown_words():
    vocabulary = WordVocabulary.build(["refund the charge"])
    index = {token: i for i, token in enumerate(vocabulary.tokens())}
    assert vocabulary.encode(["Refund my charge", ""]) == [[index["refund"], 1, index["charge"]], []]
    assert vocabulary.encode(["Refund my charge"], drop_unknown=True) == [[index["refund"], index["charge"]]]


# -- hashed n-grams ----------------------------------------------------------------------------


def test_hash_vocabulary_ids_are_the_hashes_of_the_word_and_its_ngrams():
    vocabulary = HashVocabulary(buckets=1000, ngram_range=(3, 4))
    # "<hi>" is the whole word (and its only 4-gram, counted once); its 3-grams are "<hi" and "hi>"
    expected = [zlib.crc32(g.encode()) % 1000 for g in ("<hi>", "<hi", "hi>")]
    assert vocabulary.word_ids("hi") == expected
    ids = vocabulary.encode(["Hi there", ""])
    assert ids[1] == [] and all(0 <= i < 1000 for i in ids[0])
    assert ids[0] == vocabulary.word_ids("hi") + vocabulary.word_ids("there")
    assert vocabulary.encode_grouped(["Hi there"]) == [[vocabulary.word_ids("hi"), vocabulary.word_ids("there")]]
    assert HashVocabulary(1000, (3, 4), whole_words=False).word_ids("hi") == expected[1:]


def test_hash_vocabulary_refuses_nonsense():
    with pytest.raises(TextdistillError):
        HashVocabulary(buckets=0)
    with pytest.raises(TextdistillError):
        HashVocabulary(ngram_range=(5, 3))


HASH_SCRIPT = """
import json
from textdistill.students.tokens import HashVocabulary, TokenFeatures, WordVocabulary
texts = json.loads({texts!r})
features = TokenFeatures(HashVocabulary(4096), 512)
print(json.dumps(features.encode(texts)))
"""


def test_hashed_ids_are_the_same_in_every_process():
    """Python's own hash() is salted per process; ours must not be."""
    ids = TokenFeatures(HashVocabulary(4096), 512).encode(TEXTS)
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        script = HASH_SCRIPT.format(texts=json.dumps(TEXTS))
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60, check=True)
        assert json.loads(done.stdout) == ids


# -- bigrams -----------------------------------------------------------------------------------


def test_bigrams_are_ordered_pairs_within_a_text():
    bigrams = WordBigrams(1 << 20)
    ids = bigrams.encode(["good not", "not good", "not", "", "good not bad"])
    assert [len(i) for i in ids] == [1, 1, 0, 0, 2]  # no pair joins the end of one text to the next
    assert ids[0] != ids[1]  # order matters
    assert ids[4][0] == ids[0][0]  # the same pair gets the same id wherever it occurs
    assert all(0 <= i < 1 << 20 for row in ids for i in row)
    assert bigrams.encode([]) == []


# -- vocabulary and bigrams together -----------------------------------------------------------


def test_features_put_bigram_ids_after_the_token_table():
    vocabulary = WordVocabulary.build(TEXTS)
    features = TokenFeatures(vocabulary, bigram_buckets=64)
    assert features.size == vocabulary.size + 64
    encoded = features.encode(TEXTS)
    bigram_ids = WordBigrams(64).encode(TEXTS)
    for text, ids, pairs in zip(TEXTS, encoded, bigram_ids):
        tokens = vocabulary.encode([text], drop_unknown=True)[0]
        assert ids == tokens + [vocabulary.size + b for b in pairs]
    assert encoded[2] == [] and encoded[4] == []
    for (flat, lengths), expected in zip(features.streams(TEXTS), ([len(t) for t in vocabulary.encode(TEXTS)], [len(b) for b in bigram_ids])):
        assert lengths.tolist() == expected and len(flat) == sum(expected)


def test_features_keep_the_first_max_tokens():
    vocabulary = WordVocabulary.build(["a b c d e f"])
    features = TokenFeatures(vocabulary, bigram_buckets=16, max_tokens=3)
    ids = features.encode(["a b c d e f"])[0]
    assert ids[:3] == vocabulary.encode(["a b c"])[0] and len(ids) == 6  # 3 tokens, 3 bigrams
    assert ids[3:] == [vocabulary.size + b for b in WordBigrams(16).encode(["a b c d"])[0]]


def test_features_without_bigrams_or_texts():
    features = TokenFeatures(HashVocabulary(128))
    assert features.size == 128 and features.encode([]) == []
    assert [lengths.tolist() for _, lengths in features.streams(["", "  "])] == [[0, 0]]


# -- subwords ----------------------------------------------------------------------------------


def test_subword_ids_are_the_teachers_tokenizer_ids(tiny_encoder_dir):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    vocabulary = SubwordVocabulary.from_pretrained(tiny_encoder_dir)
    texts = ["Refund my card payment, please!", "hello " * 300, "", "Где моя посылка?"]
    assert vocabulary.encode(texts) == [reference(t, add_special_tokens=False)["input_ids"] for t in texts]  # no truncation
    assert vocabulary.with_special_tokens([7, 8]) == [reference.cls_token_id, 7, 8, reference.sep_token_id]
    assert (vocabulary.unk_id, vocabulary.pad_id) == (reference.unk_token_id, reference.pad_token_id)
    assert reference.unk_token_id in vocabulary.encode(["Где"])[0]
    assert reference.unk_token_id not in vocabulary.encode(["Где"], drop_unknown=True)[0]
    assert vocabulary.size == max(reference.get_vocab().values()) + 1
    assert vocabulary.tokens()[reference.convert_tokens_to_ids("refund")] == "refund"


def test_subword_vocabulary_needs_a_tokenizer_file(tmp_path):
    with pytest.raises(TextdistillError, match="tokenizer.json"):
        SubwordVocabulary.from_pretrained(tmp_path)


# -- persistence -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["word", "hash", "subword"])
def test_save_and_load_give_the_same_ids_and_the_same_files(kind, tiny_encoder_dir, tmp_path):
    if kind == "word":
        vocabulary = WordVocabulary.build(TEXTS)
    elif kind == "hash":
        vocabulary = HashVocabulary(2048, (2, 4), whole_words=False)
    else:
        vocabulary = SubwordVocabulary.from_pretrained(tiny_encoder_dir)
    vocabulary.save(tmp_path / "a")
    loaded = load_vocabulary(tmp_path / "a")
    assert type(loaded) is type(vocabulary) and loaded.size == vocabulary.size
    assert loaded.describe() == vocabulary.describe()
    assert loaded.encode(TEXTS) == vocabulary.encode(TEXTS)
    loaded.save(tmp_path / "b")  # saving is deterministic: the same vocabulary, the same bytes
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()


def test_loading_says_what_is_missing_or_wrong(tmp_path):
    with pytest.raises(TextdistillError, match="vocabulary.json"):
        load_vocabulary(tmp_path)
    (tmp_path / "vocabulary.json").write_text(json.dumps({"kind": "sentencepiece"}))
    with pytest.raises(TextdistillError, match="sentencepiece"):
        load_vocabulary(tmp_path)
