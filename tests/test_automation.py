"""Automation thresholds: the lowest threshold reaching the target precision (against a brute-force
scan), per-label overrides, unreached labels withheld, hierarchy parents, two-class data; applied by
predict, serve, evaluate and ONNX copies; models without them unchanged; bad options refused."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from cli_in_process import run_cli
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic import synthetic

from textdistill.data.labels import LabelSpace, ancestors
from textdistill.data.messages import DataSpec, MessageSet, load_messages
from textdistill.errors import ModelError, TextdistillError
from textdistill.evaluate.evaluation import CostSettings, evaluate_model
from textdistill.models import TfidfBaseline, load_model
from textdistill.models.automation import (
    AUTOMATION_FILE,
    MIN_VALIDATION_POSITIVES,
    TARGET_NOT_REACHED,
    Automation,
    LabelAutomation,
    automate_model,
    choose_thresholds,
    read_automation,
)
from textdistill.predict import Predictions, predict_files
from textdistill.serve import ServeSettings
from textdistill.serve.app import create_app

SAMPLE_SPEC = DataSpec(text_columns=("subject", "body"), id_column="id")


def noisy(n: int, seed: int) -> list[tuple[str, str]]:
    """Template messages with a label ``other`` given at random to a fifth of them: the model
    cannot predict it precisely, and the labels it takes from are less precise."""
    rng = random.Random(seed + 1000)
    return [(text, "other" if rng.random() < 0.2 else label) for text, label in synthetic(n, seed)]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        writer.writerows((f"m{i}", text, label) for i, (text, label) in enumerate(rows))
    return path


def as_messages(rows: list[tuple[str, str]]) -> MessageSet:
    n = len(rows)
    return MessageSet([t for t, _ in rows], [f"v{i}" for i in range(n)], [(label,) for _, label in rows], list(range(1, n + 1)), "validation.csv", "label")


def brute_force(confidence: np.ndarray, predicted: np.ndarray, true: np.ndarray, target: float) -> tuple[float, float, float] | None:
    """(threshold, precision, recall) of the lowest threshold among the confidences of the
    predicted messages whose precision reaches ``target``, scanned one by one; None if none does."""
    for t in sorted(set(confidence[predicted].tolist())):
        automated = predicted & (confidence >= t)
        precision = (automated & true).sum() / automated.sum()
        if precision >= target:
            return t, precision, (automated & true).sum() / true.sum()
    return None


def assert_matches_brute_force(space: LabelSpace, proba, predicted_sets, true_sets, entries):
    """Each entry is what :func:`brute_force` finds for its label at its target precision."""
    for entry in entries:
        confidence = np.array([space.confidences(row)[entry.label] for row in proba])
        closed = lambda sets: np.array([entry.label in {*s, *(a for x in s for a in ancestors(x, space.hierarchy_sep))} for s in sets])  # noqa: E731
        predicted, true = closed(predicted_sets), closed(true_sets)
        assert entry.support == true.sum()
        expected = brute_force(confidence, predicted, true, entry.target_precision) if true.sum() >= MIN_VALIDATION_POSITIVES else None
        assert entry.reached == (expected is not None), entry
        if expected is not None:
            assert (entry.threshold, entry.precision, entry.recall) == pytest.approx(expected)
            assert entry.precision >= entry.target_precision


# -- choosing thresholds ------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 4),
    st.booleans(),
    st.sampled_from([0.5, 0.8, 0.95, 1.0]),
)
def test_the_threshold_is_the_lowest_that_reaches_the_target_as_a_brute_force_scan_finds(seed, n_labels, multi_label, target):
    rng = np.random.default_rng(seed)
    labels = [f"L{j}" for j in range(n_labels)]
    space = LabelSpace(tuple(labels), multi_label)
    n = 60
    if multi_label:
        y = rng.random((n, n_labels)) < 0.4
        proba = np.clip(0.6 * y + rng.normal(0.2, 0.25, y.shape), 0.001, 0.999)
        true_sets = [tuple(label for label, on in zip(labels, row) if on) for row in y]
        thresholds = np.full(n_labels, 0.5)
    else:
        truth = rng.integers(0, n_labels, n)
        logits = rng.normal(0, 1, (n, n_labels)) + 1.5 * np.eye(n_labels)[truth]
        proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        true_sets = [(labels[j],) for j in truth]
        thresholds = None
    predicted = space.predict(proba, thresholds)
    entries = choose_thresholds(space, proba, predicted, true_sets, target)
    assert [(e.label, e.target_precision) for e in entries] == [(label, target) for label in labels]
    assert_matches_brute_force(space, proba, predicted, true_sets, entries)


@pytest.fixture(scope="module")
def noisy_model(tmp_path_factory) -> tuple[Path, list[tuple[str, str]]]:
    """A TF-IDF model of the noisy intents, saved, and its validation messages."""
    train, validation = noisy(300, seed=0), noisy(250, seed=1)
    model = TfidfBaseline().fit([t for t, _ in train], [(label,) for _, label in train], multi_label=False)
    directory = model.save(tmp_path_factory.mktemp("noisy") / "model", config={}, training_data={"sha256": "noisy"})
    return directory, validation


def test_a_model_reaches_on_validation_what_it_says_and_overrides_apply(noisy_model, tmp_path):
    source, validation = noisy_model
    directory = shutil.copytree(source, tmp_path / "model")
    model = load_model(directory)
    automation = automate_model(directory, as_messages(validation), target_precision=0.9, label_precision={"refund": 1.0})
    by_label = automation.by_label
    assert {e.label: e.target_precision for e in automation.labels} == {"refund": 1.0, **dict.fromkeys(("cancel", "delivery", "login", "other", "praise"), 0.9)}
    texts, true_sets = [t for t, _ in validation], [(label,) for _, label in validation]
    proba = model.predict_proba(texts)
    assert_matches_brute_force(model.label_space, proba, model.predict_label_sets(texts, proba), true_sets, automation.labels)
    # the random label cannot be predicted at 0.9: listed as unreached, with why
    assert not by_label["other"].reached and by_label["other"].threshold is None and "highest validation precision" in by_label["other"].why_not
    assert read_automation(directory, model.manifest) == automation
    # a higher target never gives a lower threshold
    looser = choose_thresholds(model.label_space, proba, model.predict_label_sets(texts, proba), true_sets, 0.9)
    refund = next(e for e in looser if e.label == "refund")
    assert not by_label["refund"].reached or by_label["refund"].threshold >= refund.threshold


def test_a_label_with_too_few_validation_messages_is_unreached_with_why(noisy_model, tmp_path):
    source, validation = noisy_model
    directory = shutil.copytree(source, tmp_path / "model")
    few = [row for row in validation if row[1] != "praise"] + [row for row in validation if row[1] == "praise"][: MIN_VALIDATION_POSITIVES - 1]
    entry = automate_model(directory, as_messages(few)).by_label["praise"]
    assert (entry.reached, entry.support) == (False, MIN_VALIDATION_POSITIVES - 1)
    assert f"at least {MIN_VALIDATION_POSITIVES} are needed" in entry.why_not


def test_two_class_data_gives_each_class_its_own_threshold(tmp_path):
    rng = random.Random(3)
    rows = [(text, "urgent" if label in ("refund", "login") else "routine") for text, label in synthetic(400, seed=5)]
    rows = [(text, label if rng.random() > 0.1 else {"urgent": "routine", "routine": "urgent"}[label]) for text, label in rows]
    train, validation = rows[:200], rows[200:]
    model = TfidfBaseline().fit([t for t, _ in train], [(label,) for _, label in train], multi_label=False)
    directory = model.save(tmp_path / "model", config={}, training_data={})
    automation = automate_model(directory, as_messages(validation), target_precision=0.85)
    assert [e.label for e in automation.labels] == ["routine", "urgent"]
    assert sum(e.support for e in automation.labels) == len(validation)
    for entry in automation.labels:
        # each class is the positive one of its own curve: a prediction of it has softmax >= 0.5
        assert entry.reached and entry.threshold >= 0.5 and entry.precision >= 0.85
    texts = [t for t, _ in validation]
    proba = model.predict_proba(texts)
    assert_matches_brute_force(model.label_space, proba, model.predict_label_sets(texts, proba), [(label,) for _, label in validation], automation.labels)


@pytest.fixture(scope="module")
def hierarchical(sample_data, tmp_path_factory):
    """Single- and multi-label hierarchical TF-IDF models of the email sample, and its validation messages."""
    train = load_messages(sample_data.train, SAMPLE_SPEC)
    validation = load_messages(sample_data.validation, SAMPLE_SPEC)
    root = tmp_path_factory.mktemp("hierarchical")
    single = TfidfBaseline().fit(train.texts, [labels[:1] for labels in train.labels], multi_label=False, hierarchy_sep=" > ")
    multi = TfidfBaseline().fit(train.texts, train.labels, multi_label=True, hierarchy_sep=" > ")
    return {"single": single.save(root / "single", config={}, training_data={}), "multi": multi.save(root / "multi", config={}, training_data={})}, validation


@pytest.mark.parametrize("mode", ["single", "multi"])
def test_hierarchy_parents_get_thresholds_on_their_consistent_confidence(hierarchical, mode):
    directories, validation = hierarchical
    model = load_model(directories[mode])
    space = model.label_space
    true_sets = [labels[:1] for labels in validation.labels] if mode == "single" else validation.labels
    proba = model.predict_proba(validation.texts)
    predicted = model.predict_label_sets(validation.texts, proba)
    entries = choose_thresholds(space, proba, predicted, true_sets, 0.9)
    parents = sorted({a for label in space.labels for a in ancestors(label, " > ")})
    labels = [e.label for e in entries]
    assert set(parents) <= set(labels) and set(space.labels) <= set(labels)
    by_label = {e.label: e for e in entries}
    for parent in parents:
        children = [label for label in space.labels if parent in ancestors(label, " > ")]
        if mode == "single":  # one leaf per message: a parent's messages are its children's
            assert by_label[parent].support == sum(by_label[child].support for child in children)
        else:
            assert by_label[parent].support >= max(by_label[child].support for child in children)
    # the brute-force scan on LabelSpace.confidences (single: the children's sum; multi: at least their max)
    assert_matches_brute_force(space, proba, predicted, true_sets, entries)
    if mode == "single":
        row = space.confidences(proba[0])
        assert row[parents[0]] == pytest.approx(sum(row[c] for c in space.labels if parents[0] in ancestors(c, " > ")))


def test_kept_labels_bring_their_ancestors_and_unreached_ones_are_withheld():
    entry = lambda label, threshold: LabelAutomation(label, 0.95, threshold, None, None, 10, None, threshold is not None)  # noqa: E731
    automation = Automation(0.95, [entry("A", 0.9), entry("A > x", 0.5), entry("A > y", None), entry("B", 0.4)], {"hierarchy_sep": " > "}, {})
    # the child reaches its threshold: its parent comes with it, below its own
    assert automation.apply(("A", "A > x"), {"A": 0.6, "A > x": 0.55}) == (("A", "A > x"), [])
    # the child is withheld, the parent reaches its own
    kept, withheld = automation.apply(("A", "A > x"), {"A": 0.95, "A > x": 0.45})
    assert kept == ("A",) and [(w.label, w.threshold, w.reason) for w in withheld] == [("A > x", 0.5, "below_threshold")]
    # an unreached label is withheld at any confidence
    kept, withheld = automation.apply(("A", "A > y"), {"A": 0.5, "A > y": 0.99})
    assert kept == () and [(w.label, w.reason) for w in withheld] == [("A", "below_threshold"), ("A > y", TARGET_NOT_REACHED)]
    assert automation.apply(("B",), {"B": 0.4}) == (("B",), [])


# -- applied: predict, serve, evaluate, ONNX copies ------------------------------------------------
@pytest.fixture(scope="module")
def automated(noisy_model, tmp_path_factory) -> tuple[Path, Path, list[tuple[str, str]]]:
    """The noisy model without thresholds and a copy with them (target 0.95)."""
    source, validation = noisy_model
    directory = shutil.copytree(source, tmp_path_factory.mktemp("automated") / "model")
    automate_model(directory, as_messages(validation))
    return source, directory, validation


def test_predict_shards_carry_the_withheld_labels_and_models_without_thresholds_predict_as_before(automated, tmp_path):
    plain, shared, _ = automated
    directory = shutil.copytree(shared, tmp_path / "model")  # its thresholds are chosen again below
    texts = [t for t, _ in noisy(120, seed=9)]
    data = write_csv(tmp_path / "messages.csv", [(t, "") for t in texts])
    before = predict_files(plain, data, tmp_path / "plain", spec=DataSpec(id_column="id"))
    after = predict_files(directory, data, tmp_path / "automated", spec=DataSpec(id_column="id"))
    assert before["automation"] is None and set(after["automation"]["thresholds"]) == set(load_model(directory).label_space.labels)
    plain_rows, rows = Predictions.load(tmp_path / "plain"), Predictions.load(tmp_path / "automated")
    assert plain_rows.withheld is None and "withheld" not in pq.read_table(next((tmp_path / "plain" / "shards").glob("*.parquet"))).column_names
    model = load_model(plain)
    assert plain_rows.label_sets == [tuple(s) for s in model.predict_label_sets(texts)]  # as before automate
    automation = read_automation(directory, load_model(directory).manifest)
    thresholds = {e.label: (e.threshold if e.reached else np.inf) for e in automation.labels}
    proba = model.predict_proba(texts)
    assert any(rows.withheld) and any(rows.label_sets)
    for i, (labels, withheld) in enumerate(zip(rows.label_sets, rows.withheld)):
        # single-label: the predicted label is either returned or withheld, never both
        assert sorted((*labels, *withheld)) == list(plain_rows.label_sets[i])
        confidence = model.label_confidences(proba[i])
        assert all(confidence[label] >= thresholds[label] for label in labels)
        assert all(confidence[label] < thresholds[label] + 1e-6 for label in withheld)
    assert "other" not in {label for labels in rows.label_sets for label in labels}  # unreached: never automated
    # the thresholds chosen again: a rerun into the same directory is refused, not mixed
    automate_model(directory, as_messages(noisy(250, seed=4)), target_precision=0.9)
    with pytest.raises(TextdistillError, match="automation"):
        predict_files(directory, data, tmp_path / "automated", spec=DataSpec(id_column="id"))


def test_a_served_response_withholds_and_says_why(automated):
    plain, directory, _ = automated
    texts = [t for t, _ in noisy(60, seed=11)]
    body = {"messages": [{"id": i, "text": t} for i, t in enumerate(texts)]}
    with TestClient(create_app(directory, ServeSettings(max_wait_ms=0))) as client:
        results = client.post("/predict", json=body).json()["results"]
    with TestClient(create_app(plain, ServeSettings(max_wait_ms=0))) as client:
        plain_results = client.post("/predict", json=body).json()["results"]
    assert all("withheld" not in r for r in plain_results)  # a model without thresholds answers as before
    automation = read_automation(directory, load_model(directory).manifest).by_label
    empty = 0
    for result, before in zip(results, plain_results):
        assert {"id", "labels", "confidences", "truncated", "withheld"} <= set(result)
        withheld = {w["label"]: w for w in result["withheld"]}
        assert sorted([*result["labels"], *withheld]) == before["labels"]
        for label, w in withheld.items():
            assert w["confidence"] == pytest.approx(before["confidences"][label])
            if automation[label].reached:
                assert (w["reason"], w["threshold"]) == ("below_threshold", automation[label].threshold) and w["confidence"] < w["threshold"]
            else:
                assert w["reason"] == "target_not_reached" and "threshold" not in w
        for label in result["labels"]:
            assert result["confidences"][label] >= automation[label].threshold
        empty += result["labels"] == []
    assert empty  # a single-label message whose label is withheld gets no labels


def test_evaluate_measures_the_thresholds_on_test_data(automated):
    plain, directory, _ = automated
    test = as_messages(noisy(200, seed=12))
    result = evaluate_model(directory, test, cost=CostSettings(measure=False))
    assert evaluate_model(plain, test, cost=CostSettings(measure=False))["automation"] is None
    block = result["automation"]
    model = load_model(directory)
    proba = model.predict_proba(test.texts)
    predicted = [s[0] for s in model.predict_label_sets(test.texts, proba)]
    for row in block["labels"]:
        truth = np.array([labels[0] == row["label"] for labels in test.labels])
        assert row["support"] == truth.sum()
        if not row["reached_on_validation"]:
            assert row["automated"] == 0 and row["precision"] is None and not row["reached"]
            continue
        automated = np.array([p == row["label"] and model.label_confidences(r)[p] >= row["threshold"] for p, r in zip(predicted, proba)])
        assert row["automated"] == automated.sum()
        if automated.any():
            assert row["precision"] == pytest.approx((automated & truth).sum() / automated.sum())
            assert row["reached"] == (row["precision"] >= row["target_precision"])
    assert block["n_reached"] == sum(r["reached"] for r in block["labels"])


def test_an_onnx_copy_carries_the_thresholds_tied_to_itself(noisy_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from textdistill.compress.convert import compress_model
    from textdistill.students.static import StaticConfig, StaticStudent

    _, validation = noisy_model
    train = noisy(200, seed=20)
    student = StaticStudent(StaticConfig(embeddings="hash", dim=16, hash_buckets=2048, bigram_buckets=1024, hidden=0))
    student.label_space = LabelSpace.from_label_sets([(label,) for _, label in train], False)
    student.build_network([t for t, _ in train])
    source = student.save(tmp_path / "static", config={}, training_data={})
    automation = automate_model(source, as_messages(validation), target_precision=0.3)
    copy = compress_model(source, tmp_path / "onnx")
    carried = read_automation(tmp_path / "onnx", copy.manifest)
    assert carried.labels == automation.labels and carried.chosen_on == "static"
    # the source saved again: its old thresholds are refused, not applied to another model
    load_model(source).save(source, config={}, training_data={"sha256": "other"})
    with pytest.raises(ModelError, match="another model"):
        compress_model(source, tmp_path / "onnx-2")


# -- the command line -----------------------------------------------------------------------------
def test_the_command_prints_the_table_and_writes_the_file(noisy_model, tmp_path):
    source, validation = noisy_model
    directory = shutil.copytree(source, tmp_path / "model")
    data = write_csv(tmp_path / "validation.csv", validation)
    result = run_cli("automate", directory, "--validation", data, "--id-column", "id", "--label-precision", "refund=0.99", "-q")
    assert result.returncode == 0, result.stderr
    saved = json.loads((directory / AUTOMATION_FILE).read_text())
    reached = sum(e["reached"] for e in saved["labels"])
    assert f"{reached} of 6 labels reach 0.95 (1 with a target of their own)" in result.stdout
    assert "other: not automated" in result.stdout and "threshold" in result.stdout
    assert {e["label"]: e["target_precision"] for e in saved["labels"]}["refund"] == 0.99
    assert "textdistill automate" in run_cli("automate", "--help").stdout  # with an example
    evaluated = run_cli("evaluate", directory, "--data", data, "--id-column", "id", "--json", tmp_path / "eval.json", "--no-cost", "-q")
    block = json.loads((tmp_path / "eval.json").read_text())["automation"]
    assert evaluated.returncode == 0 and block["n_reached_on_validation"] == block["n_reached"] == reached  # on the data they were chosen on
    assert f"Automation: {block['n_reached']} of 6 labels reach 0.95 on this data ({reached} on validation)" in evaluated.stdout


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--label-precision", "refund"], "is not LABEL=PRECISION"),
        (["--label-precision", "refund=high"], "is not LABEL=PRECISION"),
        (["--label-precision", "refund=1.5"], "is 1.5; a precision is above 0 and at most 1"),
        (["--label-precision", "Refunds=0.9"], "has no label 'Refunds'"),
        (["--target-precision", "0"], "is 0.0; a precision is above 0"),
    ],
)
def test_bad_targets_exit_2_with_what_to_do(noisy_model, tmp_path, option, says):
    source, validation = noisy_model
    directory = shutil.copytree(source, tmp_path / "model")
    data = write_csv(tmp_path / "validation.csv", validation)
    result = run_cli("automate", directory, "--validation", data, "--id-column", "id", *option)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr
    assert not (directory / AUTOMATION_FILE).exists()


def test_a_validation_label_the_model_does_not_know_is_refused_naming_the_row(noisy_model, tmp_path):
    source, validation = noisy_model
    directory = shutil.copytree(source, tmp_path / "model")
    data = write_csv(tmp_path / "validation.csv", [*validation[:10], ("hello there", "unheard-of"), *validation[10:]])
    result = run_cli("automate", directory, "--validation", data, "--id-column", "id")
    assert result.returncode == 2 and "row 11" in result.stderr and "'unheard-of'" in result.stderr and "label" in result.stderr


def test_the_report_shows_the_per_label_table_of_models_with_thresholds(automated, tmp_path):
    from textdistill.evaluate.evaluation import write_evaluation
    from textdistill.evaluate.report import build_report, collect_evaluations

    plain, directory, _ = automated
    test = as_messages(noisy(120, seed=13))
    files = [write_evaluation(evaluate_model(d, test, name=name, cost=CostSettings(measure=False)), tmp_path / f"{name}.json") for d, name in ((plain, "plain"), (directory, "automated"))]
    report = build_report(collect_evaluations(files), tmp_path / "report")
    block = json.loads(files[1].read_text())["automation"]
    heading = f"automated: {block['n_reached']} of 6 labels reach 0.95 on test ({block['n_reached_on_validation']} on validation)"
    markdown, html = report.markdown.read_text(), report.html.read_text()
    assert "## Automation thresholds" in markdown and heading in markdown and "plain:" not in markdown.split("## Automation thresholds")[1].split("## Most confused")[0]
    assert "| other | 0.95 | — |" in markdown and "not automated" in markdown  # the unreached label, listed first
    assert "<h2>Automation thresholds</h2>" in html and heading in html
    # and the weakest labels' precision/recall curves, as automation counts a message
    assert "Precision/recall curves on test of automated" in html and html.count("<svg") == 2  # the main plot and these
    curve = next(row for row in block["labels"] if row["label"] == "refund")["curve"]
    assert len(curve["recall"]) <= 50 and curve["recall"][-1] == 0.0 and max(curve["recall"]) <= 1.0
