"""Distillation: the data a student learns from, several teachers, the trainer and its losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import expit, softmax

from textdistill.data.messages import MessageSet
from textdistill.distill import teachers as teachers_module
from textdistill.distill.recipe import StudentSpec, distill, distillation_data
from textdistill.distill.teachers import combine
from textdistill.errors import TextdistillError
from textdistill.models import TfidfBaseline, load_model
from textdistill.models.thresholds import MIN_OWN_POSITIVES
from textdistill.models.transformer import EncoderConfig, TransformerClassifier
from textdistill.training.arguments import TrainingArguments
from textdistill.transfer import label_messages

from synthetic import message_set, synthetic


def annotated(rows: list[tuple[str, str]], prefix: str) -> MessageSet:
    n = len(rows)
    return MessageSet([t for t, _ in rows], [f"{prefix}{i}" for i in range(n)], [(label,) for _, label in rows], list(range(1, n + 1)), "synthetic", None)


@pytest.fixture(scope="module")
def train():
    return annotated(synthetic(120, seed=10), "t")


@pytest.fixture(scope="module")
def validation():
    return annotated(synthetic(40, seed=11), "v")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, train):
    model = TfidfBaseline().fit(train.texts, train.labels, multi_label=False)
    return model.save(tmp_path_factory.mktemp("teacher") / "tfidf", training_data={"sha256": "a"})


@pytest.fixture(scope="module")
def second_teacher_dir(tmp_path_factory, train):
    rows = synthetic(60, seed=12)
    model = TfidfBaseline().fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False)
    return model.save(tmp_path_factory.mktemp("teacher2") / "tfidf", training_data={"sha256": "b"})


@pytest.fixture(scope="module")
def transfer_dir(tmp_path_factory, teacher_dir, train, validation):
    # The pool holds some annotated texts and one validation text: the data step must sort them out.
    pool = message_set([t for t, _ in synthetic(200, seed=13)] + train.texts[:30] + validation.texts[:1], prefix="u")
    out = tmp_path_factory.mktemp("transfer") / "t"
    label_messages(teacher_dir, pool, out, shard_size=64)
    return out


# -- what the student learns from -------------------------------------------------------------
def test_labels_are_attached_validation_is_held_out_and_missing_annotated_texts_are_scored(teacher_dir, transfer_dir, train, validation):
    data = distillation_data([teacher_dir], [transfer_dir], train, validation)
    assert not set(validation.texts) & set(data.texts)
    kept = set(train.texts) - set(validation.texts)
    assert kept <= set(data.texts)
    by_text = dict(zip(data.texts, data.label_sets))
    assert all(by_text[t] == labels for t, labels in zip(train.texts, train.labels) if t in kept)
    assert data.n_annotated == sum(t in kept for t in data.texts)
    # Every row's soft target is the teacher's own logits, whether stored or scored now.
    teacher = load_model(teacher_dir)
    np.testing.assert_allclose(data.teacher_logits, teacher.decision_function(data.texts), atol=1e-5)


def test_two_teachers_average_their_probabilities_and_a_second_run_uses_the_cache(teacher_dir, second_teacher_dir, transfer_dir, monkeypatch):
    one = distillation_data([teacher_dir], [transfer_dir], None, None).teacher_logits
    both = distillation_data([teacher_dir, second_teacher_dir], [transfer_dir], None, None, teacher_weights=[3, 1]).teacher_logits
    other = load_model(second_teacher_dir).decision_function(distillation_data([teacher_dir], [transfer_dir], None, None).texts)
    np.testing.assert_allclose(softmax(both, axis=1), 0.75 * softmax(one, axis=1) + 0.25 * softmax(other, axis=1), atol=1e-5)
    monkeypatch.setattr(teachers_module, "load_model", lambda *_: pytest.fail("the second teacher's logits should come from the cache"))
    again = distillation_data([teacher_dir, second_teacher_dir], [transfer_dir], None, None, teacher_weights=[3, 1]).teacher_logits
    np.testing.assert_array_equal(again, both)


def test_combine_multi_label_averages_sigmoids_and_rejects_bad_weights():
    a, b = np.array([[2.0, -1.0]]), np.array([[0.0, 1.0]])
    combined = combine([a, b], None, multi_label=True)
    np.testing.assert_allclose(expit(combined), (expit(a) + expit(b)) / 2, atol=1e-6)
    with pytest.raises(TextdistillError, match="weight"):
        combine([a, b], [1.0], multi_label=True)


def test_teachers_with_other_labels_are_refused(tmp_path, transfer_dir, train):
    rows = [(t, "other" if i % 2 else "thing") for i, (t, _) in enumerate(synthetic(40, seed=3))]
    odd = TfidfBaseline().fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False).save(tmp_path / "odd", training_data={})
    with pytest.raises(TextdistillError, match="same label set"):
        distillation_data([odd], [transfer_dir], None, None)


def test_several_transfer_sets_are_joined_in_order_keeping_each_text_once(tmp_path, teacher_dir, transfer_dir, train, validation):
    first = distillation_data([teacher_dir], [transfer_dir], None, validation)
    # A later transfer set: new texts, texts the first one holds, and a validation text.
    new_texts = [t for t, _ in synthetic(50, seed=21)]
    pool = message_set(new_texts + first.texts[:20] + validation.texts[:2], prefix="more")
    more = tmp_path / "more"
    label_messages(teacher_dir, pool, more, shard_size=32)
    joined = distillation_data([teacher_dir], [transfer_dir, more], train, validation)
    added = [t for t in dict.fromkeys(new_texts) if t not in set(first.texts)]
    assert joined.texts[: len(first.texts)] == first.texts
    assert len(joined.texts) == len(set(joined.texts))
    assert set(added) <= set(joined.texts) and not set(validation.texts) & set(joined.texts)
    np.testing.assert_allclose(joined.teacher_logits, load_model(teacher_dir).decision_function(joined.texts), atol=1e-5)
    rows = [(t, "other" if i % 2 else "thing") for i, (t, _) in enumerate(synthetic(40, seed=3))]
    odd = TfidfBaseline().fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False).save(tmp_path / "odd", training_data={})
    label_messages(odd, pool, tmp_path / "odd-transfer", shard_size=32)
    with pytest.raises(TextdistillError, match="other labels than the first transfer set"):
        distillation_data([teacher_dir], [transfer_dir, tmp_path / "odd-transfer"], None, None)


# -- the trainer ---------------------------------------------------------------------------------
def tiny_spec(tiny_encoder_dir, losses, **settings):
    training = {"epochs": 3, "batch_size": 16, "learning_rate": 1e-3, "head_learning_rate": 1e-2, "early_stopping_patience": 5}
    return StudentSpec("transformer", {"encoder": str(tiny_encoder_dir), "max_length": 24, **settings}, losses, training)


def mean_kl(teacher_logits: np.ndarray, student_logits: np.ndarray) -> float:
    p, q = softmax(teacher_logits, axis=1), softmax(student_logits, axis=1)
    return float((p * (np.log(p) - np.log(q))).sum(1).mean())


def test_a_transformer_student_learns_the_teachers_distribution(tiny_encoder_dir, teacher_dir, transfer_dir, train, validation, tmp_path):
    spec = tiny_spec(tiny_encoder_dir, [{"name": "kd", "temperature": 1.0}])
    data = distillation_data([teacher_dir], [transfer_dir], train, validation)
    untrained = TransformerClassifier(EncoderConfig(model=str(tiny_encoder_dir), max_length=24), training=TrainingArguments(epochs=0, linear_probe=False))
    untrained.fit(train.texts, train.labels, multi_label=False)
    student = distill(spec, teachers=[teacher_dir], transfer_dirs=[transfer_dir], out_dir=tmp_path / "s", train=train, validation=validation)
    before = mean_kl(data.teacher_logits, untrained.decision_function(data.texts))
    after = mean_kl(data.teacher_logits, student.decision_function(data.texts))
    assert after < 0.75 * before
    reloaded = load_model(tmp_path / "s")
    assert reloaded.manifest.config["distillation"]["n_annotated"] == data.n_annotated
    assert list(reloaded.label_space.labels) == list(load_model(teacher_dir).label_space.labels)
    np.testing.assert_allclose(reloaded.predict_proba(validation.texts), student.predict_proba(validation.texts), atol=1e-5)
    assert not (tmp_path / "s" / "checkpoint").exists()


def test_unannotated_rows_do_not_reach_the_label_loss(tiny_encoder_dir, teacher_dir, transfer_dir, tmp_path):
    # No annotated messages and only the hard-label loss: nothing to learn, the weights stay put.
    spec = tiny_spec(tiny_encoder_dir, [{"name": "ce"}], dropout=0.0)
    spec.training.update(epochs=1, weight_decay=0.0)
    distill(spec, teachers=[teacher_dir], transfer_dirs=[transfer_dir], out_dir=tmp_path / "s")
    encoder = load_model(tmp_path / "s").network.encoder
    fresh = TransformerClassifier(EncoderConfig(model=str(tiny_encoder_dir), max_length=24), training=TrainingArguments(epochs=0, linear_probe=False))
    fresh.fit(["a", "b"], [("x",), ("y",)], multi_label=False)
    for (name, trained), (_, original) in zip(encoder.state_dict().items(), fresh.network.encoder.state_dict().items()):
        torch.testing.assert_close(trained, original, msg=f"{name} changed although no row had a label")


@pytest.fixture(scope="module")
def transformer_teacher_dir(tmp_path_factory, tiny_encoder_dir, train, validation):
    args = TrainingArguments(epochs=2, batch_size=16, learning_rate=1e-3, head_learning_rate=1e-2, linear_probe=False)
    model = TransformerClassifier(EncoderConfig(model=str(tiny_encoder_dir), max_length=24), training=args)
    model.fit(train.texts, train.labels, multi_label=False)
    return model.save(tmp_path_factory.mktemp("tteacher") / "teacher", training_data={"sha256": "c"})


@pytest.fixture(scope="module")
def transformer_transfer_dir(tmp_path_factory, transformer_teacher_dir):
    out = tmp_path_factory.mktemp("ttransfer") / "t"
    label_messages(transformer_teacher_dir, message_set([t for t, _ in synthetic(150, seed=14)], prefix="u"), out, shard_size=64)
    return out


def test_teacher_layers_student_keeps_every_other_layer_with_the_teachers_weights(transformer_teacher_dir, transformer_transfer_dir, tmp_path):
    spec = StudentSpec("transformer", {}, [{"name": "kd"}], {"epochs": 0})
    student = distill(spec, teachers=[transformer_teacher_dir], transfer_dirs=[transformer_transfer_dir], out_dir=tmp_path / "s")
    teacher = load_model(transformer_teacher_dir)
    assert student.network.encoder.config.num_hidden_layers == 1
    torch.testing.assert_close(student.network.encoder.encoder.layer[0].state_dict(), teacher.network.encoder.encoder.layer[0].state_dict())


def random_bert(teacher, directory: Path, width: int, seed: int) -> Path:
    """A fresh random 2-layer BERT that reads text with the teacher's tokenizer."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    vocab = teacher.network.encoder.config.vocab_size
    config = BertConfig(vocab_size=vocab, hidden_size=width, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * width, max_position_embeddings=128)
    BertModel(config).save_pretrained(directory)
    teacher.tokenizer.save_pretrained(directory)
    return directory


def test_hidden_state_losses_pull_the_students_layers_toward_the_teachers(transformer_teacher_dir, transformer_transfer_dir, tmp_path):
    teacher = load_model(transformer_teacher_dir)
    texts = [t for t, _ in synthetic(30, seed=15)]

    def distance(student) -> float:
        """MSE between student layer l and teacher layer l (the uniform map for equal depths)."""
        batch = teacher.encode_batch(texts)
        with torch.no_grad():
            s = student.network.encoder(**batch, output_hidden_states=True).hidden_states
            t = teacher.network.encoder(**batch, output_hidden_states=True).hidden_states
        return float(sum(((s[layer] - t[layer]) ** 2).mean() for layer in (1, 2)))

    encoder = str(random_bert(teacher, tmp_path / "random", width=32, seed=1))
    settings = {"encoder": encoder, "dropout": 0.0}
    spec = StudentSpec("transformer", settings, [{"name": "kd", "weight": 0.0}], {"epochs": 0})
    before = distance(distill(spec, teachers=[transformer_teacher_dir], transfer_dirs=[transformer_transfer_dir], out_dir=tmp_path / "a"))
    losses = [{"name": "tinybert_hidden"}, {"name": "pkd", "strategy": "last", "pooling": "mean"}]
    spec = StudentSpec("transformer", settings, losses, {"epochs": 2, "batch_size": 16, "learning_rate": 1e-3})
    student = distill(spec, teachers=[transformer_teacher_dir], transfer_dirs=[transformer_transfer_dir], out_dir=tmp_path / "b")
    assert distance(student) < 0.7 * before
    # The teacher only served as a reference: its weights are untouched on disk.
    again = load_model(transformer_teacher_dir)
    torch.testing.assert_close(again.network.state_dict(), teacher.network.state_dict())


def test_the_attention_loss_pulls_the_students_attention_maps_toward_the_teachers(transformer_teacher_dir, transformer_transfer_dir, tmp_path):
    teacher = load_model(transformer_teacher_dir)
    texts = [t for t, _ in synthetic(30, seed=16)]

    def distance(student) -> float:
        batch = teacher.encode_batch(texts)
        for network in (student.network, teacher.network):
            network.encoder.set_attn_implementation("eager")
        with torch.no_grad():
            s = student.network.encoder(**batch, output_attentions=True).attentions
            t = teacher.network.encoder(**batch, output_attentions=True).attentions
        return float(sum(((a - b) ** 2).mean() for a, b in zip(s, t)))

    # A random tiny teacher attends almost uniformly; sharpen its maps so there is something to learn.
    for layer in teacher.network.encoder.encoder.layer:
        layer.attention.self.query.weight.data *= 20
        layer.attention.self.key.weight.data *= 20
    sharp = teacher.save(tmp_path / "sharp", training_data={"sha256": "d"})
    settings = {"encoder": str(random_bert(teacher, tmp_path / "random", width=32, seed=3)), "dropout": 0.0}
    untrained = distill(StudentSpec("transformer", settings, [{"name": "kd"}], {"epochs": 0}), teachers=[sharp], transfer_dirs=[transformer_transfer_dir], out_dir=tmp_path / "a")
    spec = StudentSpec("transformer", settings, [{"name": "tinybert_attention"}], {"epochs": 4, "batch_size": 16, "learning_rate": 5e-3})
    student = distill(spec, teachers=[sharp], transfer_dirs=[transformer_transfer_dir], out_dir=tmp_path / "b")
    assert distance(student) < 0.8 * distance(untrained)


def test_a_narrower_student_learns_a_projection_to_the_teachers_width(transformer_teacher_dir, transformer_transfer_dir, tmp_path):
    import torch.nn as nn

    teacher = load_model(transformer_teacher_dir)
    narrow = random_bert(teacher, tmp_path / "narrow", width=16, seed=2)
    spec = StudentSpec("transformer", {"encoder": str(narrow)}, [{"name": "tinybert_hidden"}, {"name": "kd"}], {"epochs": 1, "batch_size": 16})
    from textdistill.distill import trainer as trainer_module

    seen = {}
    original = trainer_module.DistillationTrainer.network_built

    def spy(self, model):
        original(self, model)
        seen["projection"] = [p.detach().clone() for p in self.extra_parameters()]
        seen["trainer"] = self

    trainer_module.DistillationTrainer.network_built = spy
    try:
        distill(spec, teachers=[transformer_teacher_dir], transfer_dirs=[transformer_transfer_dir], out_dir=tmp_path / "s")
    finally:
        trainer_module.DistillationTrainer.network_built = original
    projection = seen["trainer"].losses.losses["tinybert_hidden"].width.projection
    assert isinstance(projection, nn.Linear) and projection.in_features == 16 and projection.out_features == 32
    assert not torch.equal(projection.weight.detach(), seen["projection"][0])  # it was optimised


def test_state_losses_without_the_teacher_model_are_refused(transformer_transfer_dir, tmp_path):
    from textdistill.distill.trainer import DistillationTrainer

    with pytest.raises(TextdistillError, match="intermediate states"):
        DistillationTrainer([{"name": "cosine"}]).train(None, ["a"], [None], teacher_logits=np.zeros((1, 2)))


def test_a_kinds_step_floor_applies_to_its_default_epochs_only(teacher_dir, tmp_path):
    from textdistill.distill.recipe import make_student

    def training(**overrides):
        return make_student(StudentSpec("static", {"embeddings": "hash"}, None, overrides), teacher_dir, tmp_path).training

    assert training().min_steps > 0  # default epochs: at least that many steps on a small set
    assert training(epochs=3).min_steps == 0 and training(epochs=3).epochs == 3  # epochs asked for are trained as given
    assert training(epochs=3, min_steps=50).min_steps == 50


def test_a_bilstm_regresses_logits_single_label_and_matches_sigmoids_multi_label(teacher_dir, transfer_dir, tmp_path):
    from textdistill.models.manifest import Manifest

    rows = synthetic(120, seed=10)
    texts, label_sets = [t for t, _ in rows], [(label, "urgent") if i % 3 else (label,) for i, (_, label) in enumerate(rows)]
    multi_teacher = TfidfBaseline().fit(texts, label_sets, multi_label=True).save(tmp_path / "multi", training_data={"sha256": "m"})
    label_messages(multi_teacher, message_set(texts), tmp_path / "multi-transfer", shard_size=64)
    settings = {"embeddings": "hash", "dim": 16, "hidden": 8, "mlp": 8, "hash_buckets": 1024}
    for teacher, transfer, losses in ((teacher_dir, transfer_dir, ["logit_mse", "ce"]), (multi_teacher, tmp_path / "multi-transfer", ["kd", "ce"])):
        out = tmp_path / f"student-{losses[0]}"
        distill(StudentSpec("bilstm", settings, None, {"epochs": 1}), teachers=[teacher], transfer_dirs=[transfer], out_dir=out)
        assert [term["name"] for term in Manifest.read(out / "manifest.json").config["distillation"]["losses"]] == losses


def test_unknown_student_kind_lists_the_kinds():
    with pytest.raises(TextdistillError, match="static, bilstm, transformer"):
        StudentSpec("forest")


def test_transfer_dir_must_exist(teacher_dir, tmp_path):
    with pytest.raises(TextdistillError, match="label"):
        distillation_data([teacher_dir], [tmp_path / "nothing"], None, None)


def test_command_line_loss_terms_and_settings_parse_to_typed_values():
    from textdistill.distill.recipe import parse_loss_term, parse_setting

    assert parse_loss_term("kd:0.7:temperature=2") == {"name": "kd", "weight": 0.7, "temperature": 2}
    assert parse_loss_term("ce") == {"name": "ce"}
    assert parse_loss_term('tinybert_hidden:1:layer_map={"1":4}') == {"name": "tinybert_hidden", "weight": 1.0, "layer_map": {"1": 4}}
    assert parse_setting("layers=[0,2,4]") == ("layers", [0, 2, 4])
    assert parse_setting("encoder=minilm-l3") == ("encoder", "minilm-l3")
    with pytest.raises(TextdistillError, match="key=value"):
        parse_setting("dim")
    with pytest.raises(TextdistillError, match="not a number"):
        parse_loss_term("kd:heavy")


def test_a_multi_label_students_label_loss_and_thresholds_are_recorded(tmp_path):
    from textdistill.models.manifest import Manifest

    rows = synthetic(120, seed=10)
    texts, label_sets = [t for t, _ in rows], [(label, "urgent") if i % 3 else (label,) for i, (_, label) in enumerate(rows)]
    teacher = TfidfBaseline().fit(texts, label_sets, multi_label=True).save(tmp_path / "teacher", training_data={"sha256": "m"})
    label_messages(teacher, message_set(texts[:80]), tmp_path / "transfer", shard_size=64)
    n = len(texts)
    held_out = MessageSet(texts[80:], [f"v{i}" for i in range(80, n)], list(label_sets[80:]), list(range(80, n)), "synthetic", None)
    spec = StudentSpec("static", {"embeddings": "hash", "dim": 16, "hash_buckets": 1024}, None, {"epochs": 1, "multi_label_loss": "balanced"})
    distill(spec, teachers=[teacher], transfer_dirs=[tmp_path / "transfer"], out_dir=tmp_path / "student", validation=held_out, threshold_mode="auto")
    manifest = Manifest.read(tmp_path / "student" / "manifest.json")
    assert {"name": "ce", "weight": 0.3, "multi_label_loss": "balanced"} in manifest.config["distillation"]["losses"]
    assert manifest.config["training"]["arguments"]["multi_label_loss"] == "balanced"
    positives = manifest.label_space.encode(held_out.labels).sum(axis=0)
    assert manifest.threshold_mode == "auto"
    assert manifest.own_thresholds == [label for label, k in zip(manifest.labels, positives) if k >= MIN_OWN_POSITIVES]
