"""Two classes (spam / ham) next to three classes and a two-label multi-label set, through every
model kind: the TF-IDF baseline, the teacher's tuning methods and its linear probe, the static,
BiLSTM and transformer students, early exit, ONNX fp32 and int8 copies, the service, evaluate
(with the positive class's scores) and the report."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from cli_in_process import run_cli
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from textdistill.data.labels import LabelSpace
from textdistill.data.messages import MessageSet
from textdistill.distill.recipe import StudentSpec, distill
from textdistill.errors import TextdistillError
from textdistill.evaluate.evaluation import CostSettings, evaluate_model
from textdistill.evaluate.metrics import choose_positive_label
from textdistill.models import TfidfBaseline, load_model
from textdistill.models.transformer import EncoderConfig, TransformerClassifier
from textdistill.training.arguments import TrainingArguments
from textdistill.training.probe import pooled_features
from textdistill.transfer import label_messages

from synthetic import message_set, three_class, two_class, two_label

NO_COST = CostSettings(measure=False)
DATASETS = {
    "two-class": lambda n, seed: [(text, (label,)) for text, label in two_class(n, seed)],
    "three-class": lambda n, seed: [(text, (label,)) for text, label in three_class(n, seed)],
    "two-label": two_label,
}


def annotated(rows: list[tuple[str, tuple[str, ...]]], prefix: str, multi_label: bool) -> MessageSet:
    n = len(rows)
    return MessageSet([t for t, _ in rows], [f"{prefix}{i}" for i in range(n)], [labels for _, labels in rows], list(range(1, n + 1)), "synthetic", multi_label)


class Data:
    """One data set (train, validation, test and an unannotated pool) and how to score on it."""

    def __init__(self, name: str) -> None:
        make = DATASETS[name]
        self.name, self.multi_label = name, name == "two-label"
        self.train = annotated(make(96, 1), "t", self.multi_label)
        self.validation = annotated(make(32, 2), "v", self.multi_label)
        self.test = annotated(make(48, 3), "e", self.multi_label)
        self.pool = message_set([t for t, _ in make(160, 4)], prefix="u")
        self.space = LabelSpace.from_label_sets(self.train.labels, self.multi_label)

    def fit(self, model):
        return model.fit(self.train.texts, self.train.labels, multi_label=self.multi_label, validation=(self.validation.texts, self.validation.labels))

    def score(self, predicted: list, messages: MessageSet | None = None) -> float:
        """Accuracy (single-label) or micro-F1 (multi-label) of predicted labels on ``messages`` (default: test)."""
        truth = (messages or self.test).labels
        if not self.multi_label:
            return float(np.mean([p == labels[0] for p, labels in zip(predicted, truth)]))
        return float(f1_score(self.space.encode(truth), self.space.encode(predicted), average="micro"))

    def majority_score(self, messages: MessageSet | None = None) -> float:
        """The score of always predicting the training data's most common label set."""
        common = Counter(self.train.labels).most_common(1)[0][0]
        return self.score([list(common) if self.multi_label else common[0]] * len(messages or self.test), messages)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train faster on one thread than on cores shared with other work."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module", params=list(DATASETS))
def data(request) -> Data:
    return Data(request.param)


def assert_evaluates(data: Data, model_dir, **kwargs) -> dict:
    """evaluate_model's result on the test set, checked for shape; two-class data has its positive class."""
    result = evaluate_model(model_dir, data.test, cost=NO_COST, **kwargs)
    assert result["n_messages"] == len(data.test) and [row["label"] for row in result["per_label"]] == list(data.space.labels)
    assert all(row["average_precision"] is not None for row in result["per_label"])
    positive = result["positive_class"]
    if data.name == "two-class":
        rarer = min(data.space.labels, key=[labels[0] for labels in data.test.labels].count)
        assert rarer == "spam" and positive["label"] == kwargs.get("positive_label", rarer)
        assert positive == {**next(r for r in result["per_label"] if r["label"] == positive["label"]), "chosen": positive["chosen"]}
    else:
        assert positive is None
    return result


def assert_probabilities(data: Data, proba: np.ndarray) -> None:
    assert proba.shape == (len(data.test), len(data.space)) and np.isfinite(proba).all()
    if not data.multi_label:
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


# -- the TF-IDF baseline ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def baseline_dir(data, tmp_path_factory):
    return data.fit(TfidfBaseline()).save(tmp_path_factory.mktemp("baseline") / data.name, training_data={})


def test_the_baseline_is_scikit_learns_model_and_beats_the_majority(data, baseline_dir):
    model = load_model(baseline_dir)
    proba = model.predict_proba(data.test.texts)
    assert_probabilities(data, proba)
    if not data.multi_label:
        clf = LogisticRegression(C=model.config.C, max_iter=model.config.max_iter)
        clf.fit(model._features(data.train.texts), data.space.encode_single(data.train.labels))
        np.testing.assert_allclose(proba, clf.predict_proba(model._features(data.test.texts)), atol=1e-5)
    predicted = model.predict(data.test.texts)
    assert data.score(predicted) > max(data.majority_score(), 0.8)
    assert {label for labels in model.predict_label_sets(data.test.texts) for label in labels} == set(data.space.labels)
    result = assert_evaluates(data, baseline_dir)
    if data.name == "two-class":
        assert result["positive_class"]["chosen"] == "rarer class" and result["positive_class"]["f1"] > 0.8
        ham = assert_evaluates(data, baseline_dir, positive_label="ham")["positive_class"]
        assert ham["chosen"] == "given" and ham["support"] == sum(labels == ("ham",) for labels in data.test.labels)


def test_a_two_class_baseline_saved_with_scikit_learns_one_column_loads_as_that_model(tmp_path):
    from textdistill.models.baseline import WEIGHTS_FILE
    from textdistill.persistence import load_arrays, save_arrays

    two = Data("two-class")
    directory = two.fit(TfidfBaseline()).save(tmp_path / "baseline", training_data={})
    expected = load_model(directory).predict_proba(two.test.texts)
    tensors = load_arrays(directory / WEIGHTS_FILE)
    weights, bias = tensors["weights"], tensors["bias"]
    # What earlier versions saved: coef_.T, (features, 1), and the one intercept, in a manifest
    # without checksums.
    save_arrays({**tensors, "weights": weights[:, 1:] - weights[:, :1], "bias": bias[1:] - bias[:1]}, directory / WEIGHTS_FILE)
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["checksums"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    np.testing.assert_allclose(load_model(directory).predict_proba(two.test.texts), expected, atol=1e-5)


# -- the teacher: linear probe and tuning methods -------------------------------------------------
def teacher(tiny_encoder_dir, method: str = "full", **training) -> TransformerClassifier:
    args = TrainingArguments(**{"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "head_learning_rate": 1e-2, **training})
    return TransformerClassifier(EncoderConfig(model=str(tiny_encoder_dir), method=method, max_length=24, predict_batch_size=64), training=args)


def test_the_probe_warm_start_is_scikit_learns_logistic_regression(data, tiny_encoder_dir):
    model = data.fit(teacher(tiny_encoder_dir, "head", probe_C=1.0))
    x, x_test = pooled_features(model, data.train.texts), pooled_features(model, data.test.texts)
    if data.multi_label:
        y = data.space.encode(data.train.labels)
        expected = np.column_stack([LogisticRegression(C=1.0, max_iter=2000).fit(x, y[:, j]).predict_proba(x_test)[:, 1] for j in range(y.shape[1])])
    else:
        expected = LogisticRegression(C=1.0, max_iter=2000).fit(x, data.space.encode_single(data.train.labels)).predict_proba(x_test)
    np.testing.assert_allclose(model.predict_proba(data.test.texts), expected, atol=1e-4)
    weight = model.network.head.weight.detach()
    assert weight.shape[0] == len(data.space)
    assert not torch.allclose(weight[0], weight[1])  # one row per class, not one row broadcast into both


@pytest.mark.parametrize("method", ["full", "head", "freeze:1", "bitfit", "lora", "adapter"])
def test_every_tuning_method_trains_saves_and_evaluates(data, tiny_encoder_dir, method, tmp_path):
    model = data.fit(teacher(tiny_encoder_dir, method, probe_C=1.0))
    directory = model.save(tmp_path / "teacher", config={}, training_data={})
    reloaded = load_model(directory)
    proba = reloaded.predict_proba(data.test.texts)
    assert_probabilities(data, proba)
    np.testing.assert_allclose(proba, model.predict_proba(data.test.texts), atol=1e-5)
    assert_evaluates(data, directory)


@pytest.fixture(scope="module")
def teacher_dir(data, tiny_encoder_dir, tmp_path_factory):
    model = data.fit(teacher(tiny_encoder_dir, epochs=3))
    return model.save(tmp_path_factory.mktemp("teacher") / data.name, config={}, training_data={})


def test_the_teacher_is_compared_with_a_baseline_that_works(data, teacher_dir):
    from textdistill.training.compare import compare_with_baseline

    validation = (data.validation.texts, data.validation.labels)
    result = compare_with_baseline(load_model(teacher_dir), (data.train.texts, data.train.labels), validation)
    assert result["baseline"] > max(data.majority_score(data.validation), 0.8)


# -- early exit ----------------------------------------------------------------------------------
def test_early_exit_at_threshold_zero_is_the_teacher_and_evaluates(data, teacher_dir, tmp_path):
    from textdistill.students.early_exit import train_early_exit

    model = train_early_exit(teacher_dir, data.pool.texts, tmp_path / "early", epochs=2, batch_size=16, learning_rate=1e-2, threshold=0.3)
    logits, exits = model.predict_with_exits(data.test.texts, 0.0)
    np.testing.assert_allclose(logits, load_model(teacher_dir).decision_function(data.test.texts), atol=1e-5)
    assert (exits == model.n_layers).all()
    assert_probabilities(data, load_model(tmp_path / "early").predict_proba(data.test.texts))
    result = assert_evaluates(data, tmp_path / "early")
    assert [point["threshold"] for point in result["early_exit"]["curve"]][0] == 0.0


# -- students, their ONNX copies and the service ----------------------------------------------------
# The BiLSTM steps through each message's character n-grams one by one: 64 of them (of the default
# 128) still beat the majority by far on every data set, in a third of the time.
STUDENTS = {
    "static": ({"embeddings": "hash", "dim": 32, "hash_buckets": 4096, "bigram_buckets": 2048}, {"epochs": 20, "learning_rate": 2e-2}),
    "bilstm": (
        {"embeddings": "hash", "dim": 16, "hidden": 16, "mlp": 16, "hash_buckets": 4096, "max_tokens": 64},
        {"epochs": 12, "learning_rate": 2e-2, "head_learning_rate": 2e-2},
    ),
    "transformer": ({"max_length": 24}, {"epochs": 4, "batch_size": 16, "learning_rate": 3e-3, "head_learning_rate": 1e-2}),
}


@pytest.fixture(scope="module")
def transfer_dir(data, baseline_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer") / data.name
    label_messages(baseline_dir, data.pool, out, shard_size=64)
    return out


@pytest.fixture(scope="module", params=list(STUDENTS))
def student_dir(request, data, baseline_dir, transfer_dir, tiny_encoder_dir, tmp_path_factory):
    settings, training = STUDENTS[request.param]
    if request.param == "transformer":
        settings = {**settings, "encoder": str(tiny_encoder_dir)}
    out = tmp_path_factory.mktemp("student") / f"{data.name}-{request.param}"
    spec = StudentSpec(request.param, settings, None, {"early_stopping_patience": 100, **training})
    distill(spec, teachers=[baseline_dir], transfer_dirs=[transfer_dir], out_dir=out, train=data.train, validation=data.validation)
    return out


def test_a_student_learns_from_the_baseline_teacher(data, student_dir):
    student = load_model(student_dir)
    assert_probabilities(data, student.predict_proba(data.test.texts))
    assert data.score(student.predict(data.test.texts)) > data.majority_score()
    assert_evaluates(data, student_dir)


def test_onnx_fp32_and_int8_copies_match_the_student(data, student_dir, tmp_path):
    from textdistill.compress.convert import compress_model

    source = load_model(student_dir).predict_proba(data.test.texts)
    fp32 = compress_model(student_dir, tmp_path / "fp32")
    np.testing.assert_allclose(fp32.predict_proba(data.test.texts), source, atol=1e-4)
    # The copy's own refusal bound matches this test's: a tiny BiLSTM's quantized gates can move a probe
    # probability by 0.03 on some CPUs (0.0303 in CI), which the default tolerance refuses.
    int8 = compress_model(student_dir, tmp_path / "int8", int8=True, int8_tolerance=0.05).predict_proba(data.test.texts)
    assert np.abs(int8 - source).max() < 0.05
    assert_evaluates(data, tmp_path / "int8")


def assert_served(data: Data, model_dir) -> None:
    """The service, in process, answers with the model's own labels and every label's score."""
    from fastapi.testclient import TestClient

    from textdistill.serve import ServeSettings
    from textdistill.serve.app import create_app

    model = load_model(model_dir)
    texts = data.test.texts[:12]
    with TestClient(create_app(model, ServeSettings(max_wait_ms=0))) as client:
        response = client.post("/predict", params={"scores": "true"}, json={"messages": [{"id": i, "text": t} for i, t in enumerate(texts)]})
        info = client.get("/model").json()
    assert response.status_code == 200, response.text
    assert info["labels"] == list(data.space.labels) and info["multi_label"] == data.multi_label
    proba = model.predict_proba(texts)
    for result, labels, row in zip(response.json()["results"], model.predict_label_sets(texts), proba):
        assert result["labels"] == list(labels)
        assert result["scores"] == pytest.approx(dict(zip(data.space.labels, row.tolist())), abs=1e-6)


def test_the_service_answers_with_the_baselines_labels(data, baseline_dir):
    assert_served(data, baseline_dir)


def test_the_service_answers_with_the_students_labels(data, student_dir):
    assert_served(data, student_dir)


# -- the positive class: choice, command line and report --------------------------------------------
def test_the_positive_class_is_the_given_or_the_rarer_label_and_nothing_else():
    space = LabelSpace(("ham", "spam"), multi_label=False)
    assert choose_positive_label(space, [("ham",), ("spam",), ("ham",)]) == "spam"
    assert choose_positive_label(space, [("spam",), ("ham",), ("spam",)]) == "ham"
    assert choose_positive_label(space, [("spam",), ("ham",)]) == "ham"  # a tie: the first label
    assert choose_positive_label(space, [("spam",)], "spam") == "spam"
    with pytest.raises(TextdistillError, match="'Spam' is not a label of this model; its labels are: 'ham', 'spam'"):
        choose_positive_label(space, [("ham",)], "Spam")
    three = LabelSpace(("a", "b", "c"), multi_label=False)
    assert choose_positive_label(three, [("a",)]) is None and choose_positive_label(LabelSpace(("a", "b"), multi_label=True), [("a",)]) is None
    with pytest.raises(TextdistillError, match="two-class single-label models only, and this model is 3-class"):
        choose_positive_label(three, [("a",)], "a")
    with pytest.raises(TextdistillError, match="this model is multi-label"):
        choose_positive_label(LabelSpace(("a", "b"), multi_label=True), [("a",)], "a")


def test_evaluate_and_report_show_the_positive_class_and_refuse_an_unknown_one(tmp_path):
    import csv

    two = Data("two-class")
    for part, messages in (("train", two.train), ("test", two.test)):
        with (tmp_path / f"{part}.csv").open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([("text", "label"), *((t, labels[0]) for t, labels in zip(messages.texts, messages.labels))])
    assert run_cli("baseline", "--train", tmp_path / "train.csv", "--out", tmp_path / "model", "--quiet").returncode == 0
    evaluate = ("evaluate", tmp_path / "model", "--data", tmp_path / "test.csv", "--no-cost", "--quiet")
    done = run_cli(*evaluate, "--json", tmp_path / "spam.json")
    assert done.returncode == 0, done.stderr
    spam = json.loads((tmp_path / "spam.json").read_text())
    assert spam["positive_class"]["label"] == "spam" and f"positive class 'spam': precision {spam['positive_class']['precision']:.4f}" in done.stdout
    refused = run_cli(*evaluate, "--json", tmp_path / "x.json", "--positive-label", "junk")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and not (tmp_path / "x.json").exists()
    assert "positive label 'junk' is not a label of this model; its labels are: 'ham', 'spam'" in refused.stderr

    from textdistill.evaluate.report import build_report

    older = {key: value for key, value in spam.items() if key != "positive_class"}  # written before the field existed
    files = build_report([{**spam, "name": "two-class"}, {**older, "name": "older"}], tmp_path / "report")
    markdown, html = files.markdown.read_text(), files.html.read_text()
    row = spam["positive_class"]
    assert "## Positive class" in markdown and f"| two-class | spam | rarer class | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} |" in markdown
    assert "| older |" not in markdown.split("## Positive class")[1].split("##")[0]
    assert 'id="positive-class"' in html
    files = build_report([{**older, "name": "older"}], tmp_path / "old-report")
    assert "Positive class" not in files.markdown.read_text()


def test_the_pipeline_takes_a_positive_label():
    from textdistill.pipeline import RunConfig

    config = RunConfig.from_dict({"data": {"train": "a.csv", "test": "b.csv"}, "evaluate": {"positive_label": "spam", "threads": 2}})
    assert config.positive_label == "spam" and config.cost.threads == 2
    assert RunConfig.from_dict({"data": {"train": "a.csv", "test": "b.csv"}}).positive_label is None
