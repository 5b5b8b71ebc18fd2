"""Transformers that read a long message in overlapping windows, on the tiny random BERT:
coverage, equality with head+tail where a message fits, batching, persistence, learning from the
middle of a message, the ONNX copy, distillation on hidden states and early exit."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from transformers import BertModel, BertTokenizerFast

from conftest import TINY_WORDS
from textdistill.errors import TextdistillError
from textdistill.models import load_model
from textdistill.models.base import MANIFEST_FILE
from textdistill.models.encoder_config import EncoderConfig
from textdistill.models.manifest import Manifest
from textdistill.models.transformer import TransformerClassifier
from textdistill.students.tokens import head_tail_ids, split_windows, window_rows, window_starts
from textdistill.students.transformer import student_config
from textdistill.training.arguments import TrainingArguments

MAX_LENGTH = 16  # 14 text tokens between [CLS] and [SEP]
SHORT = ["refund please", "where is my parcel", "cannot log in"]
LONG = ["where is my parcel " * 12 + "refund", "hello " * 40 + "password reset", "the item was broken " * 30]
LABELS = [("refund",), ("delivery",), ("login",)]


def classifier(encoder_dir, *, epochs=0, **config) -> TransformerClassifier:
    """A classifier on the tiny encoder; with ``epochs=0`` its head is random but seeded, so two
    of them built alike have the same weights."""
    settings = {"model": str(encoder_dir), "max_length": MAX_LENGTH, **config}
    args = TrainingArguments(epochs=epochs, batch_size=8, learning_rate=3e-3, head_learning_rate=1e-2, linear_probe=False, seed=0)
    model = TransformerClassifier(EncoderConfig(**settings), training=args)
    return model.fit(SHORT, LABELS, multi_label=False) if epochs == 0 else model


# -- where the windows are -------------------------------------------------------------------


@pytest.mark.parametrize("budget,stride", [(14, 10), (14, 14), (14, 1), (5, 3)])
def test_windows_cover_every_token_and_overlap_as_configured(budget, stride):
    for n in range(1, 8 * budget):
        starts = window_starts(n, budget, stride, max_windows=1000)
        covered = {i for start in starts for i in range(start, min(start + budget, n))}
        assert covered == set(range(n)), n
        if n <= budget:
            assert starts == [0]
            continue
        assert starts[0] == 0 and starts[-1] + budget == n  # full windows, the last one ending at the end
        gaps = np.diff(starts)
        assert (gaps[:-1] == stride).all() and 0 < gaps[-1] <= stride  # neighbours overlap by at least budget - stride


def test_beyond_max_windows_the_first_windows_and_the_last_are_kept():
    all_starts = window_starts(500, 14, 10, max_windows=1000)
    kept = window_starts(500, 14, 10, max_windows=4)
    assert kept == all_starts[:3] + all_starts[-1:]
    # Windows read everything head+tail truncation reads, whatever the budget of windows.
    for n in (15, 40, 500):
        read = {i for start in window_starts(n, 14, 10, max_windows=2) for i in range(start, start + 14)}
        assert set(head_tail_ids(list(range(n)), 14, 0.25)) <= read


def test_window_rows_say_where_each_messages_windows_are():
    np.testing.assert_array_equal(window_rows([1, 3, 2]), [[0, -1, -1], [1, 2, 3], [4, 5, -1]])


def test_a_stride_that_would_skip_text_is_refused(tiny_encoder_dir):
    with pytest.raises(ValueError, match="skip text"):
        window_starts(100, 14, 15, max_windows=4)
    with pytest.raises(TextdistillError, match="stride 15 is longer than the 14 text tokens.*at most 14"):
        classifier(tiny_encoder_dir, stride=15)
    with pytest.raises(ValueError, match="long_messages is 'sliding'; choose one of: windows, head_tail"):
        EncoderConfig(long_messages="sliding")
    with pytest.raises(ValueError, match="max_windows is 1.*head_tail"):
        EncoderConfig(max_windows=1)
    with pytest.raises(ValueError, match="window_pooling is 'sum'"):
        EncoderConfig(window_pooling="sum")


def test_each_window_is_framed_by_special_tokens_and_together_they_hold_the_message(tiny_encoder_dir):
    model = classifier(tiny_encoder_dir, stride=10)
    tokenizer = model.tokenizer
    text_ids = tokenizer(LONG[0], add_special_tokens=False)["input_ids"]
    windows = split_windows(model.token_ids([LONG[0]])[0], MAX_LENGTH)
    assert len(windows) == len(window_starts(len(text_ids), 14, 10, 16)) > 2
    for window, start in zip(windows, window_starts(len(text_ids), 14, 10, 16)):
        assert window[0] == tokenizer.cls_token_id and window[-1] == tokenizer.sep_token_id
        assert list(window[1:-1]) == text_ids[start : start + 14]
    # The ONNX side reads the message into the same windows without transformers.
    from textdistill.compress.export import _transformer

    assert _transformer(model)[1].token_ids(LONG + SHORT) == model.token_ids(LONG + SHORT)


# -- what the network computes -----------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_a_message_that_fits_one_window_reads_exactly_as_head_tail_does(tiny_encoder_dir, pooling):
    windows = classifier(tiny_encoder_dir, window_pooling=pooling)
    head_tail = classifier(tiny_encoder_dir, long_messages="head_tail")
    assert windows.token_ids(SHORT) == head_tail.token_ids(SHORT)
    # Alone, and in a batch beside long messages whose windows pad the window index.
    np.testing.assert_array_equal(windows.decision_function(SHORT), head_tail.decision_function(SHORT))
    mixed = windows.decision_function(SHORT + LONG)[: len(SHORT)]
    np.testing.assert_allclose(mixed, head_tail.decision_function(SHORT), rtol=0, atol=1e-6)


def test_mean_max_pooling_reads_one_window_as_its_mean_and_max_side_by_side(tiny_encoder_dir):
    model = classifier(tiny_encoder_dir, window_pooling="mean_max")
    head_tail = classifier(tiny_encoder_dir, long_messages="head_tail")
    assert model.network.head.in_features == 2 * head_tail.network.head.in_features
    with torch.inference_mode():
        model.network.eval()
        pooled = model.network.pool(**model.encode_batch(SHORT))
        single = head_tail.network.pool(**head_tail.encode_batch(SHORT))
    torch.testing.assert_close(pooled, torch.cat([single, single], dim=1), rtol=0, atol=0)


@pytest.mark.parametrize("pooling", ["mean", "max", "mean_max"])
def test_batched_windowed_logits_equal_one_by_one(tiny_encoder_dir, pooling):
    model = classifier(tiny_encoder_dir, window_pooling=pooling, max_windows=3)
    texts = LONG + SHORT + ["hi " * 200]  # the last needs more windows than max_windows allows
    together = model.decision_function(texts)
    alone = np.concatenate([model.decision_function([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_windows_read_the_middle_of_a_long_message_and_head_tail_does_not(tiny_encoder_dir):
    windows = classifier(tiny_encoder_dir)
    head_tail = classifier(tiny_encoder_dir, long_messages="head_tail")
    before, after = "hello " * 20 + "refund " + "hello " * 20, "hello " * 20 + "parcel " + "hello " * 20
    assert not np.allclose(windows.decision_function([before]), windows.decision_function([after]))
    np.testing.assert_array_equal(head_tail.decision_function([before]), head_tail.decision_function([after]))


# -- learning ------------------------------------------------------------------------------------

KEYWORDS = {"refund": "refund", "delivery": "parcel", "login": "password"}
FILLER = sorted(set(TINY_WORDS) - {"refund", "parcel", "password", "money", "charge", "charged", "courier", "delivery", "login", "locked", "reset", "log", "account"})


def keyword_in_the_middle(n: int, seed: int) -> tuple[list[str], list[tuple[str]]]:
    """Messages of 40 random filler words with their label's keyword at word 20: head+tail
    truncation to 14 tokens keeps words 0-3 and 31-40, so only a reader of the middle can tell."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = sorted(KEYWORDS)[i % len(KEYWORDS)]
        words = [rng.choice(FILLER) for _ in range(40)]
        words.insert(20, KEYWORDS[label])
        texts.append(" ".join(words))
        labels.append((label,))
    return texts, labels


def test_windows_learn_a_keyword_in_the_middle_that_head_tail_cannot_see(tiny_encoder_dir):
    train, test = keyword_in_the_middle(90, seed=0), keyword_in_the_middle(60, seed=1)
    scores = {}
    for mode in ("windows", "head_tail"):
        model = classifier(tiny_encoder_dir, epochs=10, long_messages=mode).fit(*train, multi_label=False)
        scores[mode] = np.mean([p == l[0] for p, l in zip(model.predict(test[0]), test[1])])
    assert scores["windows"] >= 0.8, scores
    assert scores["head_tail"] <= 0.5, scores  # chance is 1/3


# -- persistence -----------------------------------------------------------------------------------


def test_a_windowed_model_saves_its_settings_and_reloads_alike(tiny_encoder_dir, tmp_path):
    model = classifier(tiny_encoder_dir, window_pooling="mean_max", max_windows=5)
    model.save(tmp_path / "model")
    encoder = json.loads((tmp_path / "model" / MANIFEST_FILE).read_text())["config"]["encoder"]
    reading = {key: encoder[key] for key in ("long_messages", "stride", "max_windows", "window_pooling")}
    assert reading == {"long_messages": "windows", "stride": 10, "max_windows": 5, "window_pooling": "mean_max"}  # stride: 3/4 of 14
    reloaded = load_model(tmp_path / "model")
    assert reloaded.config.long_message_settings() == model.config.long_message_settings()
    np.testing.assert_allclose(reloaded.decision_function(LONG + SHORT), model.decision_function(LONG + SHORT), atol=1e-6)


def test_a_manifest_saved_before_windows_existed_loads_as_head_tail(tiny_encoder_dir, tmp_path):
    model = classifier(tiny_encoder_dir, long_messages="head_tail")
    directory = model.save(tmp_path / "old")
    manifest = Manifest.read(directory / MANIFEST_FILE)
    for key in ("long_messages", "stride", "max_windows", "window_pooling"):
        del manifest.config["encoder"][key]
    manifest.seal(directory, list(manifest.checksums["files"]))
    manifest.write(directory / MANIFEST_FILE)
    old = load_model(directory)
    assert old.config.long_messages == "head_tail"
    np.testing.assert_allclose(old.decision_function(LONG), model.decision_function(LONG), atol=1e-6)


def test_a_transformer_student_reads_long_messages_as_its_teacher():
    teacher = {"model": "t", "max_length": 64, "long_messages": "windows", "stride": 40, "max_windows": 8, "window_pooling": "max"}
    student = student_config(teacher, {}, "s")
    assert student.model == "s" and student.method == "full"
    assert student.long_message_settings() == {"long_messages": "windows", "max_length": 64, "stride": 40, "max_windows": 8, "window_pooling": "max"}
    assert student_config(teacher, {"max_length": 32}, "s").stride is None  # its own default for its own windows
    assert student_config({"model": "t", "max_length": 64}, {}, "s").long_messages == "head_tail"  # a teacher saved before windows
    with pytest.raises(TextdistillError, match="transformer student: window_pooling"):
        student_config(teacher, {"window_pooling": "median"}, "s")


# -- ONNX --------------------------------------------------------------------------------------------


def test_the_onnx_copy_reproduces_windowed_predictions(tiny_encoder_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from textdistill.compress.convert import compress_model

    model = classifier(tiny_encoder_dir, window_pooling="mean_max", max_windows=4)
    model.save(tmp_path / "model")
    onnx = compress_model(tmp_path / "model", tmp_path / "onnx")  # its own parity check passes
    assert [i.name for i in onnx.session().get_inputs()] == ["input_ids", "attention_mask", "windows"]
    features = onnx.manifest.config["onnx"]["features"]
    assert {key: features[key] for key in ("long_messages", "stride", "max_windows")} == {"long_messages": "windows", "stride": 10, "max_windows": 4}
    texts = LONG + SHORT + ["hi " * 200, ""]
    np.testing.assert_allclose(onnx.predict_proba(texts), model.predict_proba(texts), atol=1e-5)


# -- distillation on hidden states ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dropout_free_encoder_dir(tiny_encoder_dir, tmp_path_factory):
    """The tiny encoder without dropout, so that a student equal to its teacher computes the
    teacher's states exactly while training."""
    directory = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    encoder = BertModel.from_pretrained(tiny_encoder_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    encoder.save_pretrained(directory, safe_serialization=True)
    BertTokenizerFast.from_pretrained(tiny_encoder_dir).save_pretrained(directory)
    return directory


def test_hidden_state_losses_compare_windowed_student_and_teacher_window_by_window(dropout_free_encoder_dir, tmp_path):
    from textdistill.distill.trainer import DistillationTrainer

    teacher = classifier(dropout_free_encoder_dir, epochs=2).fit(LONG * 3, LABELS * 3, multi_label=False)
    teacher.save(tmp_path / "teacher")
    texts = LONG * 4
    logits = teacher.decision_function(texts)

    def hidden_loss(start_from) -> float:
        student = TransformerClassifier(
            EncoderConfig(model=str(start_from), max_length=MAX_LENGTH),
            training=TrainingArguments(epochs=1, batch_size=4, learning_rate=0.0, head_learning_rate=0.0, linear_probe=False),
        )
        student.label_space = teacher.label_space
        trainer = DistillationTrainer([{"name": "tinybert_hidden"}], student.training, teacher=load_model(tmp_path / "teacher"))
        return trainer.train(student, texts, [None] * len(texts), teacher_logits=logits)[-1]["train_loss"]

    # A student that is the teacher reads the same windows: its states match token for token.
    assert hidden_loss(tmp_path / "teacher" / "encoder") == 0.0
    assert hidden_loss(dropout_free_encoder_dir) > 0.0


# -- early exit ---------------------------------------------------------------------------------------


def test_early_exit_pools_windows_and_drops_all_of_a_message_that_leaves(tiny_encoder_dir):
    from textdistill.students.early_exit import EarlyExitClassifier, normalised_entropy

    backbone = classifier(tiny_encoder_dir, max_windows=4)
    model = EarlyExitClassifier(backbone)
    texts = LONG + SHORT + ["hi " * 200]
    np.testing.assert_allclose(model.predict_with_exits(texts, 0.0)[0], backbone.decision_function(texts), atol=1e-5)
    np.testing.assert_allclose(model.branch_logits(texts)[-1], backbone.decision_function(texts), atol=1e-5)
    # A threshold between the messages' first-layer uncertainties sends some out early.
    uncertainty = normalised_entropy(torch.from_numpy(model.branch_logits(texts)[0]), multi_label=False).numpy()
    threshold = float(np.median(uncertainty)) + 1e-6
    logits, exits = model.predict_with_exits(texts, threshold)
    assert set(exits.tolist()) == {1, 2}
    np.testing.assert_array_equal(exits, (uncertainty >= threshold) + 1)
    alone = [model.predict_with_exits([t], threshold) for t in texts]
    np.testing.assert_allclose(logits, np.concatenate([a[0] for a in alone]), atol=1e-5)
    np.testing.assert_array_equal(exits, np.concatenate([a[1] for a in alone]))


def test_the_pipeline_teacher_takes_the_window_settings(tmp_path):
    from textdistill.pipeline import RunConfig

    data = {"train": "train.csv", "test": "test.csv"}
    settings = {"long_messages": "windows", "stride": 50, "max_windows": 4, "window_pooling": "max"}
    teacher = RunConfig.from_dict({"data": data, "teacher": dict(settings)}).teacher
    assert {key: getattr(teacher, key) for key in settings} == settings
    path = tmp_path / "run.toml"
    path.write_text('[data]\ntrain = "train.csv"\ntest = "test.csv"\n[teacher]\nmax_windows = 1\n', encoding="utf-8")
    with pytest.raises(TextdistillError, match="run.toml: max_windows is 1"):
        RunConfig.from_toml(path)
