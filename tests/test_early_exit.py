"""Early exit on tiny random encoders: exact equivalence at threshold 0, row bookkeeping when
messages leave a batch, self-distillation, persistence, the curve, evaluation and the report."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from textdistill.data.messages import load_messages
from textdistill.errors import TextdistillError
from textdistill.evaluate.evaluation import CostSettings, evaluate_model
from textdistill.evaluate.report import build_report
from textdistill.models import load_model
from textdistill.models.transformer import EncoderConfig, TransformerClassifier
from textdistill.students.early_exit import (
    EarlyExitClassifier,
    exit_curve,
    normalised_entropy,
    train_early_exit,
)
from textdistill.training.arguments import TrainingArguments

INTENTS = {
    "refund": ["i want my money back", "refund the charge please", "please refund my order", "charged twice refund"],
    "delivery": ["where is my parcel", "the delivery is late", "courier has not arrived", "parcel not delivered"],
    "login": ["cannot log in", "reset my password please", "account locked help", "login password not working"],
}
TEXTS = [t for texts in INTENTS.values() for t in texts] * 3
LABELS = [(label,) for label, texts in INTENTS.items() for _ in texts] * 3
# Mixed lengths, so batches are padded and rows of different widths leave at different layers.
PROBE = [
    "refund",
    "where is my parcel it was due on monday and still has not arrived at my address",
    "cannot log in",
    "please help my account is locked and the password reset has not arrived",
    "charged twice",
    "hello",
    "the courier was late and the box was damaged and the item was wrong",
    "i want to cancel my subscription plan",
    "login",
    "great service thanks",
    "refund my order please it was broken",
    "where",
]
N_LAYERS = 4


def _tiny_encoder(directory, tiny_encoder_dir, model_class, config_class, **config):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    torch.manual_seed(0)
    settings = dict(hidden_size=32, num_hidden_layers=N_LAYERS, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    model_class(config_class(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **{**settings, **config})).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def bert_dir(tiny_encoder_dir, tmp_path_factory):
    """The conftest tiny BERT's vocabulary in a 4-layer BERT: several exits to leave at."""
    from transformers import BertConfig, BertModel

    return _tiny_encoder(tmp_path_factory.mktemp("bert4"), tiny_encoder_dir, BertModel, BertConfig)


def _backbone(encoder_dir, *, multi_label=False, epochs=4):
    args = TrainingArguments(epochs=epochs, batch_size=8, learning_rate=2e-3, head_learning_rate=1e-2, linear_probe=False)
    model = TransformerClassifier(EncoderConfig(model=str(encoder_dir), max_length=32, predict_batch_size=64), training=args)
    if multi_label:
        labels = [(*label, "urgent") if i % 3 == 0 else label for i, label in enumerate(LABELS)]
        return model.fit(TEXTS, labels, multi_label=True)
    return model.fit(TEXTS, LABELS, multi_label=False)


@pytest.fixture(scope="module")
def backbone_dir(bert_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("backbone") / "teacher"
    _backbone(bert_dir).save(directory)
    return directory


@pytest.fixture(scope="module")
def trained(backbone_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("early") / "early_exit"
    untrained = EarlyExitClassifier(load_model(backbone_dir), seed=0)
    before = untrained.branch_divergence(TEXTS + PROBE)
    model = train_early_exit(backbone_dir, TEXTS + PROBE, out, epochs=10, batch_size=8, learning_rate=1e-2, seed=0, threshold=0.3)
    return model, out, before


def test_threshold_zero_is_the_backbone_exactly(backbone_dir, trained):
    model, _, _ = trained
    backbone = load_model(backbone_dir)
    logits, exits = model.predict_with_exits(PROBE, 0.0)
    np.testing.assert_allclose(logits, backbone.decision_function(PROBE), atol=1e-5)
    assert (exits == N_LAYERS).all()


def test_threshold_one_leaves_at_the_first_layer_with_the_first_branch(trained):
    model, _, _ = trained
    logits, exits = model.predict_with_exits(PROBE, 1.0)
    assert (exits == 1).all()
    np.testing.assert_allclose(logits, model.branch_logits(PROBE)[0], atol=1e-5)


def _spread_out(model: EarlyExitClassifier) -> EarlyExitClassifier:
    """Make deeper branches more confident (larger logits), so that at one threshold messages
    leave at several different layers."""
    with torch.no_grad():
        for k, branch in enumerate(model.branches):
            branch[-1].weight.mul_(4.0 * (k + 1))
    return model


def _mixed_exit_threshold(model: EarlyExitClassifier, texts: list[str]) -> float:
    """A threshold at which the messages leave at the most distinct layers, placed in a gap
    between observed uncertainties so that no decision rides on float noise."""
    u = np.stack([normalised_entropy(torch.from_numpy(b), False).numpy() for b in model.branch_logits(texts)[:-1]])
    values = np.unique(u)
    candidates = [(a + b) / 2 for a, b in zip(values, values[1:]) if b - a > 1e-4]

    def layers_used(t: float) -> int:  # the exit rule, applied to every branch's output
        leaves = np.vstack([u < t, np.ones(u.shape[1], dtype=bool)])
        return len(set(leaves.argmax(axis=0).tolist()))

    return max(candidates, key=layers_used)


def _assert_batched_equals_alone(model: EarlyExitClassifier, texts: list[str], threshold: float) -> None:
    logits, exits = model.predict_with_exits(texts, threshold)
    alone = [model.predict_with_exits([text], threshold) for text in texts]
    np.testing.assert_array_equal(exits, [e[0] for _, e in alone])
    np.testing.assert_allclose(logits, np.concatenate([l for l, _ in alone]), atol=1e-5)


def test_batched_exits_equal_one_at_a_time(backbone_dir):
    model = _spread_out(EarlyExitClassifier(load_model(backbone_dir), seed=1))
    threshold = _mixed_exit_threshold(model, PROBE)
    exits = model.predict_with_exits(PROBE, threshold)[1]
    assert len(set(exits.tolist())) >= 3, exits  # rows really leave the batch at different layers
    _assert_batched_equals_alone(model, PROBE, threshold)
    branches = model.branch_logits(PROBE)
    logits = model.predict_with_exits(PROBE, threshold)[0]
    for i, layer in enumerate(exits):  # and each gets the logits of the branch it left at
        np.testing.assert_allclose(logits[i], branches[layer - 1, i], atol=1e-5)


def test_branches_learn_to_match_the_final_classifier(trained):
    model, _, before = trained
    after = model.branch_divergence(TEXTS + PROBE)
    assert len(after) == N_LAYERS - 1
    assert all(a < 0.5 * b for a, b in zip(after, before)), (before, after)
    assert model.history[-1]["train_loss"] < model.history[0]["train_loss"]


def test_save_and_load_model_roundtrip(trained):
    model, out, _ = trained
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "early_exit" and manifest["config"]["early_exit"]["threshold"] == 0.3
    assert (out / "branches.safetensors").is_file() and (out / "encoder").is_dir() and (out / "head.safetensors").is_file()
    reloaded = load_model(out)
    assert isinstance(reloaded, EarlyExitClassifier) and reloaded.threshold == 0.3
    assert reloaded.n_params == model.n_params > load_model(manifest["config"]["early_exit"]["backbone"]).n_params
    np.testing.assert_allclose(reloaded.decision_function(PROBE), model.decision_function(PROBE), atol=1e-6)
    np.testing.assert_array_equal(reloaded.predict_with_exits(PROBE, 0.2)[1], model.predict_with_exits(PROBE, 0.2)[1])
    assert reloaded.predict(PROBE) == model.predict(PROBE)


def test_linear_branches_save_and_load(backbone_dir, tmp_path):
    model = EarlyExitClassifier(load_model(backbone_dir), branch_hidden=0, threshold=1.0)
    assert all(isinstance(branch, torch.nn.Linear) for branch in model.branches)
    reloaded = load_model(model.save(tmp_path / "linear"))
    assert reloaded.branch_hidden == 0 and (reloaded.predict_with_exits(PROBE)[1] == 1).all()
    np.testing.assert_allclose(reloaded.decision_function(PROBE), model.decision_function(PROBE), atol=1e-6)


def test_curve_uses_fewer_layers_as_the_threshold_rises(trained):
    model, _, _ = trained
    thresholds = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0]
    curve = exit_curve(model, TEXTS, LABELS, thresholds)
    layers = [point["mean_layers"] for point in curve]
    assert [p["threshold"] for p in curve] == thresholds
    assert layers[0] == N_LAYERS and layers[-1] == 1.0
    assert all(a >= b for a, b in zip(layers, layers[1:]))
    assert all(sum(p["exits_per_layer"]) == len(TEXTS) and p["ms_per_message"] > 0 for p in curve)
    full = np.mean([p == l[0] for p, l in zip(load_model(model.source).predict(TEXTS), LABELS)])
    assert curve[0]["accuracy"] == pytest.approx(full) and curve[0]["micro_f1"] == pytest.approx(full)


def test_multi_label(bert_dir, tmp_path):
    backbone_path = tmp_path / "teacher"
    _backbone(bert_dir, multi_label=True, epochs=3).save(backbone_path)
    backbone = load_model(backbone_path)
    untrained = EarlyExitClassifier(backbone)
    before = untrained.branch_divergence(TEXTS)
    model = train_early_exit(backbone_path, TEXTS, tmp_path / "ee", epochs=5, batch_size=8, learning_rate=1e-2)
    assert all(a < b for a, b in zip(model.branch_divergence(TEXTS), before))
    logits, exits = model.predict_with_exits(PROBE, 0.0)
    np.testing.assert_allclose(logits, backbone.decision_function(PROBE), atol=1e-5)
    assert (exits == N_LAYERS).all() and (model.predict_with_exits(PROBE, 1.0)[1] == 1).all()
    reloaded = load_model(tmp_path / "ee")
    np.testing.assert_allclose(reloaded.thresholds, backbone.thresholds)
    proba = reloaded.predict_proba(PROBE)
    assert proba.shape == (len(PROBE), 4) and ((proba >= 0) & (proba <= 1)).all()
    assert all(isinstance(p, list) for p in reloaded.predict(PROBE))
    curve = exit_curve(reloaded, TEXTS, [(*l, "urgent") if i % 3 == 0 else l for i, l in enumerate(LABELS)], [0.0, 0.5, 1.0])
    assert curve[0]["accuracy"] is None and 0 <= curve[0]["micro_f1"] <= 1


def test_normalised_entropy_bounds():
    certain = torch.tensor([[50.0, -50.0, -50.0]])
    uniform = torch.zeros((1, 3))
    assert normalised_entropy(certain, False).item() < 1e-6
    assert normalised_entropy(uniform, False).item() == pytest.approx(1.0)
    assert normalised_entropy(torch.zeros((1, 5)), True).item() == pytest.approx(1.0)
    assert normalised_entropy(torch.full((1, 5), 40.0), True).item() < 1e-6


@pytest.mark.parametrize("family", ["mpnet", "roberta"])
def test_other_encoder_families_match_their_backbone(family, tiny_encoder_dir, tmp_path):
    import transformers

    classes = {"mpnet": ("MPNetModel", "MPNetConfig"), "roberta": ("RobertaModel", "RobertaConfig")}[family]
    model_class, config_class = (getattr(transformers, name) for name in classes)
    extra = {"max_position_embeddings": 160} if family == "roberta" else {}
    encoder = _tiny_encoder(tmp_path / family, tiny_encoder_dir, model_class, config_class, **extra)
    backbone = _backbone(encoder, epochs=0)
    model = EarlyExitClassifier(backbone)
    logits, exits = model.predict_with_exits(PROBE, 0.0)
    np.testing.assert_allclose(logits, backbone.decision_function(PROBE), atol=1e-5)
    assert (exits == N_LAYERS).all()
    _spread_out(model)
    threshold = _mixed_exit_threshold(model, PROBE)
    assert len(set(model.predict_with_exits(PROBE, threshold)[1].tolist())) >= 3
    _assert_batched_equals_alone(model, PROBE, threshold)


def test_unsupported_encoder_is_a_clear_error(tiny_encoder_dir, tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    encoder = _tiny_encoder(
        tmp_path / "distilbert", tiny_encoder_dir, DistilBertModel, DistilBertConfig, dim=32, n_layers=2, n_heads=2, hidden_dim=64
    )
    backbone = _backbone(encoder, epochs=0)
    with pytest.raises(TextdistillError, match="distilbert"):
        EarlyExitClassifier(backbone)


def test_early_exit_model_cannot_be_fit_on_labels(trained):
    with pytest.raises(TextdistillError, match="train_early_exit"):
        trained[0].fit(TEXTS, LABELS, multi_label=False)


def test_evaluation_and_report_show_the_curve(trained, tmp_path):
    _, out, _ = trained
    path = tmp_path / "test.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows([[t, l[0]] for t, l in zip(TEXTS[:12], LABELS[:12])])
    result = evaluate_model(out, load_messages(path), cost=CostSettings(measure=False))
    early = result["early_exit"]
    assert early["threshold"] == 0.3 and early["n_layers"] == N_LAYERS
    assert [p["threshold"] for p in early["curve"]] == [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7]
    assert early["curve"][0]["mean_layers"] == N_LAYERS
    json.dumps(result)  # the evaluation JSON holds the curve
    files = build_report([result], tmp_path / "report")
    markdown = files.markdown.read_text()
    assert "## Early exit" in markdown and "| threshold | accuracy | mean layers | ms/msg |" in markdown
    assert "Early exit" in files.html.read_text()


def test_branch_logits_batch_messages_of_similar_length(trained, monkeypatch):
    """Batches in length order pad little; rows still come back in the order of the texts."""
    from dataclasses import replace

    model, _, _ = trained
    expected = np.concatenate([model.branch_logits([text]) for text in PROBE], axis=1)
    monkeypatch.setattr(model.backbone, "config", replace(model.backbone.config, predict_batch_size=3))
    batches = []
    encode_batch = model.backbone.encode_batch
    monkeypatch.setattr(model.backbone, "encode_batch", lambda texts: batches.append(list(texts)) or encode_batch(texts))
    logits = model.branch_logits(PROBE)
    assert [t for batch in batches for t in batch] == sorted(PROBE, key=len) and len(batches) == 4
    np.testing.assert_allclose(logits, expected, atol=1e-5)
