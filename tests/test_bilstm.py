"""The BiLSTM student: learns, packs sequences (batched equals one by one), saves and reloads
exactly, and handles multi-label data and odd messages."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from textdistill.errors import TextdistillError
from textdistill.models import load_model
from textdistill.students.bilstm import BiLSTMConfig, BiLSTMStudent

from synthetic import synthetic

torch = pytest.importorskip("torch")
SMALL = {"embeddings": "hash", "dim": 24, "hidden": 16, "mlp": 24, "hash_buckets": 4096}


@pytest.fixture(scope="module")
def rows():
    return synthetic(240, seed=20), synthetic(60, seed=21)


def make(epochs=6, **settings) -> BiLSTMStudent:
    config = BiLSTMConfig(**{**SMALL, **settings})
    return BiLSTMStudent(config, training=replace(BiLSTMStudent.default_training(), epochs=epochs, min_steps=0, batch_size=16, learning_rate=5e-3, head_learning_rate=5e-3))


@pytest.fixture(scope="module")
def trained(rows):
    train, validation = rows
    model = make()
    return model.fit([t for t, _ in train], [(label,) for _, label in train], multi_label=False, validation=([t for t, _ in validation], [(label,) for _, label in validation]))


def test_it_learns_the_intents(trained, rows):
    _, held_out = rows
    predictions = trained.predict([t for t, _ in held_out])
    accuracy = np.mean([p == label for p, (_, label) in zip(predictions, held_out)])
    assert accuracy > 0.8  # five intents: chance is 0.2


def test_batched_predictions_equal_one_by_one_whatever_the_padding(trained):
    texts = ["refund", "where is my parcel 12345, it was due on monday and has still not arrived at all", "", "cannot log in"]
    together = trained.decision_function(texts)
    alone = np.concatenate([trained.decision_function([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_save_and_load_give_the_same_probabilities(trained, tmp_path):
    trained.save(tmp_path / "m", config={}, training_data={})
    loaded = load_model(tmp_path / "m")
    assert loaded.kind == "bilstm" and loaded.n_params == trained.n_params
    texts = [t for t, _ in synthetic(20, seed=22)]
    np.testing.assert_allclose(loaded.predict_proba(texts), trained.predict_proba(texts), atol=1e-6)
    assert not list((tmp_path / "m").glob("*.pt")) and not list((tmp_path / "m").glob("*.pkl"))


def test_teacher_vectors_initialise_the_embeddings(tiny_encoder_dir, rows):
    train, _ = rows
    model = make(epochs=0, embeddings="teacher", init_from=str(tiny_encoder_dir), dim=8)
    model.fit([t for t, _ in train], [(label,) for _, label in train], multi_label=False)
    from textdistill.students.embeddings import distill_teacher_vectors

    expected = distill_teacher_vectors(tiny_encoder_dir, model.vocabulary, dim=8)
    np.testing.assert_allclose(model.network.embedding.weight.detach().numpy(), expected, atol=1e-5)


def test_multi_label(rows):
    train, _ = rows
    pairs = list(zip(train[::2], train[1::2]))
    texts = [a + " Also, " + b for (a, _), (b, _) in pairs]
    label_sets = [tuple(sorted({la, lb})) for (_, la), (_, lb) in pairs]
    model = make(epochs=15).fit(texts, label_sets, multi_label=True, validation=(texts[:30], label_sets[:30]))
    predicted = model.predict(texts)
    assert all(isinstance(p, list) for p in predicted)
    hits = np.mean([set(p) == set(truth) for p, truth in zip(predicted, label_sets)])
    assert hits > 0.5 and model.thresholds is not None and len(model.thresholds) == 5


def test_unknown_settings_are_named():
    with pytest.raises(TextdistillError, match="unknown BiLSTM setting"):
        BiLSTMConfig.from_dict({"hiden": 3})
