"""The transformer teacher on a tiny random BERT: methods, persistence, resume, warnings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_in_process import run_cli

from textdistill.models import load_model
from textdistill.models.transformer import EncoderConfig, TransformerClassifier
from textdistill.students.tokens import head_tail_ids
from textdistill.training.arguments import TrainingArguments
from textdistill.training.compare import compare_with_baseline
from textdistill.training.finetune import FineTuner, batch_order

INTENTS = {
    "refund": ["i want my money back", "refund the charge please", "please refund my order", "charged twice refund"],
    "delivery": ["where is my parcel", "the delivery is late", "courier has not arrived", "parcel not delivered"],
    "login": ["cannot log in", "reset my password please", "account locked help", "login password not working"],
}
TEXTS = [t for texts in INTENTS.values() for t in texts] * 4
LABELS = [(label,) for label, texts in INTENTS.items() for _ in texts] * 4


def make(tiny_encoder_dir, method="full", epochs=3, long_messages="windows", **training):
    args = TrainingArguments(epochs=epochs, batch_size=8, learning_rate=1e-3, head_learning_rate=1e-2, **training)
    config = EncoderConfig(model=str(tiny_encoder_dir), method=method, max_length=16, long_messages=long_messages)
    return TransformerClassifier(config, training=args)


def test_head_tail_truncation_keeps_both_ends():
    assert head_tail_ids(list(range(10)), 4, 0.25) == [0, 7, 8, 9]
    assert head_tail_ids([1, 2], 4, 0.25) == [1, 2]


def test_batched_length_sorted_prediction_equals_one_by_one(tiny_encoder_dir):
    model = make(tiny_encoder_dir, epochs=0, linear_probe=False)
    model.fit(TEXTS, LABELS, multi_label=False)
    texts = ["refund", "where is my parcel it was due on monday and still has not arrived " * 3, "cannot log in"]
    assert len(model.token_ids(texts[1:2])[0]) > 16  # the long one needs several windows
    together = model.decision_function(texts)
    alone = np.concatenate([model.decision_function([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_head_tail_cuts_long_messages_to_max_length(tiny_encoder_dir):
    model = make(tiny_encoder_dir, epochs=0, linear_probe=False, long_messages="head_tail")
    model.fit(TEXTS, LABELS, multi_label=False)
    ids = model.token_ids(["hello " * 50 + "refund"])[0]
    assert len(ids) == 16
    assert ids[-2] == model.tokenizer.convert_tokens_to_ids("refund")  # the tail survives


@pytest.mark.parametrize("method", ["full", "freeze:1", "bitfit", "adapter:8", "lora:4", "head"])
def test_every_method_trains_saves_and_reloads(tiny_encoder_dir, tmp_path, method):
    model = make(tiny_encoder_dir, method=method, epochs=4)
    model.fit(TEXTS, LABELS, multi_label=False, validation=(TEXTS[:12], LABELS[:12]))
    trainable, total = model.trainable_params, model.n_params
    if method == "full":
        assert trainable == total
    else:
        assert 0 < trainable < total
    accuracy = np.mean([p == l[0] for p, l in zip(model.predict(TEXTS), LABELS)])
    assert accuracy > 0.6  # learnt something (chance is 1/3)
    model.save(tmp_path / "teacher")
    manifest = json.loads((tmp_path / "teacher" / "manifest.json").read_text())
    assert manifest["kind"] == "transformer" and manifest["config"]["method"] == method
    assert manifest["config"]["trainable_params"] == trainable and manifest["config"]["total_params"] == total
    assert not list((tmp_path / "teacher").rglob("*.bin")) and not list((tmp_path / "teacher").rglob("*.pt"))
    reloaded = load_model(tmp_path / "teacher")
    np.testing.assert_allclose(reloaded.predict_proba(TEXTS[:6]), model.predict_proba(TEXTS[:6]), atol=1e-5)


def test_linear_probe_warm_start_beats_a_random_head(tiny_encoder_dir):
    random_head = make(tiny_encoder_dir, method="head", epochs=0, linear_probe=False).fit(TEXTS, LABELS, multi_label=False)
    probed = make(tiny_encoder_dir, method="head", epochs=0, probe_C=100.0).fit(TEXTS, LABELS, multi_label=False)
    score = lambda m: np.mean([p == l[0] for p, l in zip(m.predict(TEXTS), LABELS)])  # noqa: E731
    assert score(probed) > score(random_head)
    assert probed.history[0]["probe_C"] == 100.0


def test_multi_label_teacher_uses_sigmoid_and_thresholds(tiny_encoder_dir):
    labels = [("Billing > Refund",) if "refund" in t else ("Delivery > Late",) if "parcel" in t or "deliver" in t else () for t in TEXTS]
    model = make(tiny_encoder_dir, epochs=2)
    model.fit(TEXTS, labels, multi_label=True, hierarchy_sep=" > ", validation=(TEXTS[:24], labels[:24]))
    proba = model.predict_proba(TEXTS[:4])
    assert proba.shape == (4, 4) and not np.allclose(proba.sum(1), 1.0)
    assert model.thresholds is not None and "Billing" in model.label_space


def test_batch_order_is_deterministic_and_covers_every_message():
    lengths = list(np.random.default_rng(0).integers(1, 50, 100))
    first = batch_order(lengths, 8, seed=1, epoch=0)
    assert [b.tolist() for b in first] == [b.tolist() for b in batch_order(lengths, 8, seed=1, epoch=0)]
    assert sorted(np.concatenate(first).tolist()) == list(range(100))
    assert [b.tolist() for b in first] != [b.tolist() for b in batch_order(lengths, 8, seed=1, epoch=1)]


def test_interrupted_training_resumes_to_the_same_weights(tiny_encoder_dir, tmp_path, monkeypatch):
    uninterrupted = make(tiny_encoder_dir, epochs=2, checkpoint_every=3)
    uninterrupted.fit(TEXTS, LABELS, multi_label=False)

    saves = {"n": 0}
    original = FineTuner._save_checkpoint

    def crash_after_second_checkpoint(self, *args, **kwargs):
        original(self, *args, **kwargs)
        saves["n"] += 1
        if saves["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(FineTuner, "_save_checkpoint", crash_after_second_checkpoint)
    interrupted = make(tiny_encoder_dir, epochs=2, checkpoint_every=3)
    interrupted.checkpoint_dir = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(TEXTS, LABELS, multi_label=False)
    assert (tmp_path / "ckpt" / "state.pt").exists()
    monkeypatch.setattr(FineTuner, "_save_checkpoint", original)

    resumed = make(tiny_encoder_dir, epochs=2, checkpoint_every=3)
    resumed.checkpoint_dir = tmp_path / "ckpt"
    resumed.fit(TEXTS, LABELS, multi_label=False)
    for (name, a), (_, b) in zip(uninterrupted.network.named_parameters(), resumed.network.named_parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_checkpoint_from_other_settings_is_not_reused(tiny_encoder_dir, tmp_path):
    first = make(tiny_encoder_dir, epochs=1, checkpoint_every=1)
    first.checkpoint_dir = tmp_path / "ckpt"
    first.fit(TEXTS, LABELS, multi_label=False)
    other = make(tiny_encoder_dir, epochs=1, checkpoint_every=1, seed=5)
    other.checkpoint_dir = tmp_path / "ckpt"
    other.fit(TEXTS, LABELS, multi_label=False)
    assert other.history[0]["epoch"] == 0  # started afresh with its own linear probe


def test_weak_teacher_warning(tiny_encoder_dir, capsys):
    weak = make(tiny_encoder_dir, epochs=0, linear_probe=False).fit(TEXTS, LABELS, multi_label=False)
    result = compare_with_baseline(weak, (TEXTS, LABELS), (TEXTS, LABELS))
    assert result["baseline"] > result["teacher"] and not result["teacher_is_better"]
    assert "NOT better" in capsys.readouterr().err


def test_teach_command_end_to_end(tiny_encoder_dir, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("text,label\n" + "".join(f"{t},{l[0]}\n" for t, l in zip(TEXTS * 2, LABELS * 2)), encoding="utf-8")
    out = tmp_path / "teacher"
    args = ["teach", "--train", data, "--model", tiny_encoder_dir, "--method", "bitfit", "--epochs", "1", "--batch-size", "8",
            "--max-length", "16", "--long-messages", "windows", "--stride", "7", "--max-windows", "3", "--window-pooling", "mean_max"]
    result = run_cli(*args, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Saved teacher (bitfit" in result.stdout and "TF-IDF baseline" in result.stderr
    trained = json.loads((out / "manifest.json").read_text())["config"]
    assert f"{trained['trainable_params']:,} of {trained['total_params']:,} parameters trained" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["metrics"]["validation"]["metric"] == "accuracy"
    reading = {"long_messages": "windows", "max_length": 16, "stride": 7, "max_windows": 3, "window_pooling": "mean_max"}
    assert {key: manifest["config"]["encoder"][key] for key in reading} == reading
    assert not (out / "checkpoint").exists()
    evaluated = run_cli("evaluate", out, "--data", data, "--json", tmp_path / "e.json", "--no-cost", "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    evaluation = json.loads((tmp_path / "e.json").read_text())
    assert evaluation["kind"] == "transformer" and evaluation["long_messages"] == reading
    refused = run_cli(*args, "--window-pooling", "median", "--out", out, "--quiet")
    assert refused.returncode != 0 and "window_pooling is 'median'; choose one of: mean, max, mean_max" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_label_command_writes_a_resumable_transfer_set(tiny_encoder_dir, tmp_path):
    teacher = make(tiny_encoder_dir, method="head", epochs=0).fit(TEXTS, LABELS, multi_label=False)
    teacher.save(tmp_path / "teacher")
    pool = tmp_path / "pool.csv"
    pool.write_text("text\n" + "".join(f"{t} {i}\n" for i, t in enumerate(TEXTS)), encoding="utf-8")
    command = ["label", "--teacher", tmp_path / "teacher", "--texts", pool, "--out", tmp_path / "transfer",
               "--augment", "mask,ngram", "--augment-factor", "2", "--shard-size", "16", "--quiet"]  # fmt: skip
    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    assert "Transfer set:" in result.stdout and f"{len(TEXTS)} original" in result.stdout
    from textdistill.transfer import TransferSet

    transfer = TransferSet.load(tmp_path / "transfer")
    originals = [i for i, o in enumerate(transfer.origins) if o == "original"]
    np.testing.assert_allclose(transfer.logits[originals], teacher.decision_function([transfer.texts[i] for i in originals]), atol=1e-5)
    again = run_cli(*command)  # finished: nothing to redo
    assert again.returncode == 0 and TransferSet.load(tmp_path / "transfer").ids == transfer.ids
    changed = run_cli(*command[:-3], "--augment-factor", "3", "--quiet")
    assert changed.returncode == 2 and "Traceback" not in changed.stderr


def test_probe_features_are_cached_for_the_next_method(tiny_encoder_dir, tmp_path, monkeypatch):
    from textdistill.training import probe

    monkeypatch.setenv("TEXTDISTILL_CACHE", str(tmp_path / "cache"))
    calls = []
    original = probe.pooled_features
    monkeypatch.setattr(probe, "pooled_features", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = make(tiny_encoder_dir, method="head", epochs=0, probe_C=1.0).fit(TEXTS, LABELS, multi_label=False)
    assert len(calls) == 1 and len(list((tmp_path / "cache" / "features").glob("*.npy"))) == 1
    second = make(tiny_encoder_dir, method="lora:4", epochs=0, probe_C=1.0).fit(TEXTS, LABELS, multi_label=False)
    assert len(calls) == 1  # the second method reused the first one's features
    np.testing.assert_allclose(first.decision_function(TEXTS[:4]), second.decision_function(TEXTS[:4]), atol=1e-5)
    make(tiny_encoder_dir, method="head", epochs=0, probe_C=1.0).fit(TEXTS[:24], LABELS[:24], multi_label=False)
    assert len(calls) == 2  # other texts, other features
