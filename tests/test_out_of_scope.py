"""The reject option: scores as defined (against direct computations), the threshold as a brute-force
scan chooses it, unknown intents rejected more than known ones; applied by predict, serve, evaluate
and ONNX copies; models without it unchanged; bad settings and stale files refused."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from cli_in_process import run_cli
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp, softmax
from synthetic import synthetic

from textdistill.data.labels import LabelSpace
from textdistill.data.messages import DataSpec, MessageSet
from textdistill.errors import ModelError, TextdistillError
from textdistill.evaluate.evaluation import CostSettings, evaluate_model
from textdistill.models import TfidfBaseline, load_model
from textdistill.models.out_of_scope import (
    DEFAULT_SCORE,
    OUT_OF_SCOPE_FILE,
    STATS_FILE,
    choose_threshold,
    fit_model,
    fit_stats,
    out_of_scope_scores,
    read_out_of_scope,
)
from textdistill.predict import Predictions, predict_files
from textdistill.serve import ServeSettings
from textdistill.serve.app import create_app

UNKNOWN = "praise"  # the intent the model never sees: its messages are out of scope
# messages about nothing the model was trained for, in words it has never seen
NONSENSE = ["quarterly synergy offsite agenda attached", "lunch menu for friday: soup, salad", "the printer on floor three jams",
            "parking garage closed for repaving", "happy birthday to Marta from accounting", "minutes of the board meeting"]  # fmt: skip


def known(n: int, seed: int) -> list[tuple[str, str]]:
    return [(t, label) for t, label in synthetic(n, seed) if label != UNKNOWN]


def unknown(n: int, seed: int) -> list[str]:
    return [t for t, label in synthetic(n, seed) if label == UNKNOWN]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        writer.writerows((f"m{i}", text, label) for i, (text, label) in enumerate(rows))
    return path


def as_messages(rows: list[tuple[str, str]]) -> MessageSet:
    n = len(rows)
    return MessageSet([t for t, _ in rows], [f"v{i}" for i in range(n)], [(label,) for _, label in rows], list(range(1, n + 1)), "validation.csv", "label")


# -- scores and thresholds ----------------------------------------------------------------------
def test_each_score_is_what_its_definition_computes():
    rng = np.random.default_rng(0)
    train, y = rng.normal(0, 1, (200, 4)) + 3 * np.eye(4)[np.arange(200) % 4], np.arange(200) % 4
    z = rng.normal(0, 2, (30, 4))
    assert np.allclose(out_of_scope_scores("msp", z), 1 - softmax(z, axis=1).max(axis=1))
    assert np.allclose(out_of_scope_scores("energy", z), -logsumexp(z, axis=1))
    assert np.allclose(out_of_scope_scores("maxlogit", z), -z.max(axis=1))
    stats = fit_stats("mahalanobis", train, y)
    centred = train - np.stack([train[y == c].mean(0) for c in range(4)])[y]
    inverse = np.linalg.inv(np.cov(centred.T))
    direct = [min((v - train[y == c].mean(0)) @ inverse @ (v - train[y == c].mean(0)) for c in range(4)) for v in z]
    assert np.allclose(out_of_scope_scores("mahalanobis", z, stats), direct, rtol=1e-3)
    stats = fit_stats("knn", train, y)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    tenth = [1 - np.sort(unit(train) @ v)[-10] for v in unit(z)]
    assert np.allclose(out_of_scope_scores("knn", z, stats), tenth, atol=1e-5)
    with pytest.raises(TextdistillError, match="unknown"):
        out_of_scope_scores("softmax", z)


def test_fitted_scores_rank_a_vector_far_from_every_label_above_the_training_ones():
    rng = np.random.default_rng(1)
    train, y = rng.normal(0, 0.5, (300, 3)) + 4 * np.eye(3)[np.arange(300) % 3], np.arange(300) % 3
    far = np.array([[-6.0, -6.0, 9.0], [2.0, 2.0, 2.0]])
    for score in ("mahalanobis", "knn"):
        stats = fit_stats(score, train, y)
        assert out_of_scope_scores(score, far, stats).min() > np.quantile(out_of_scope_scores(score, train, stats), 0.99), score


def brute_force(scores: np.ndarray, correct: np.ndarray, max_loss: float) -> float | None:
    """The lowest candidate threshold (each score, and below all) whose rejected-and-right share is within the loss."""
    for t in [scores.min() - 1, *sorted(set(scores.tolist()))]:
        if (correct & (scores > t)).mean() <= max_loss + 1e-12:
            return t
    return None


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.01, 0.05, 0.3]), st.booleans())
def test_the_threshold_is_the_lowest_within_the_loss_as_a_brute_force_scan_finds(seed, max_loss, ties):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    scores = rng.integers(0, 6, n).astype(float) if ties else rng.normal(0, 1, n)
    correct = rng.random(n) < 0.8
    threshold = choose_threshold(scores, correct, max_loss)
    assert (correct & (scores > threshold)).mean() <= max_loss + 1e-12
    expected = brute_force(scores, correct, max_loss)
    # same rejected set as the brute force's threshold (the reject-all threshold sits just below the lowest score)
    assert np.array_equal(scores > threshold, scores > expected)


# -- a model with a reject option -------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A TF-IDF model of four intents (praise held out), saved."""
    train = known(500, seed=0)
    model = TfidfBaseline().fit([t for t, _ in train], [(label,) for _, label in train], multi_label=False)
    return model.save(tmp_path_factory.mktemp("oos") / "model", config={}, training_data={"sha256": "four-intents"})


@pytest.fixture(scope="module")
def rejecting(model_dir, tmp_path_factory) -> Path:
    """A copy of the model with its reject option fitted (energy, 1 point)."""
    directory = shutil.copytree(model_dir, tmp_path_factory.mktemp("rejecting") / "model")
    fit_model(directory, as_messages(known(500, seed=0)), as_messages(known(300, seed=1)))
    return directory


def test_unknown_intents_are_rejected_far_more_than_known_ones_within_the_loss(rejecting):
    found = read_out_of_scope(rejecting, load_model(rejecting).manifest)
    assert found.score == DEFAULT_SCORE and found.validation["in_scope_loss"] <= 0.01
    model = load_model(rejecting)
    in_scope, _ = found.reject(model.decision_function([t for t, _ in known(300, seed=5)]))
    out, _ = found.reject(model.decision_function(unknown(300, seed=5) + NONSENSE))
    assert out.mean() > 0.5 and out.mean() > 5 * in_scope.mean()


def test_auto_with_known_examples_keeps_the_score_that_rejects_most_of_them(model_dir, tmp_path):
    directory = shutil.copytree(model_dir, tmp_path / "model")
    examples = unknown(200, seed=3) + NONSENSE
    found = fit_model(directory, as_messages(known(500, seed=0)), as_messages(known(300, seed=1)), score="auto", examples=examples)
    compared = found.examples["compared"]
    assert set(compared) == {"msp", "energy", "maxlogit", "mahalanobis", "knn"}
    best = max(row["rejected_share"] for row in compared.values())
    assert compared[found.score]["rejected_share"] == best == found.examples["rejected_share"]
    assert found.examples["n"] == len(examples)
    if found.score in ("mahalanobis", "knn"):
        assert (directory / STATS_FILE).is_file()
    # fitted again with a score without statistics: the old statistics file goes
    fit_model(directory, as_messages(known(500, seed=0)), as_messages(known(300, seed=1)), score="knn")
    assert (directory / STATS_FILE).is_file()
    fit_model(directory, as_messages(known(500, seed=0)), as_messages(known(300, seed=1)), score="msp")
    assert not (directory / STATS_FILE).exists()


def test_predict_shards_mark_rejected_messages_without_labels(model_dir, rejecting, tmp_path):
    texts = [t for t, _ in known(40, seed=7)] + unknown(80, seed=7) + NONSENSE
    data = write_csv(tmp_path / "messages.csv", [(t, "") for t in texts])
    plain = predict_files(model_dir, data, tmp_path / "plain", spec=DataSpec(id_column="id"))
    assert plain["out_of_scope"] is None and "out_of_scope" not in pq.read_table(next((tmp_path / "plain").rglob("*.parquet"))).column_names
    manifest = predict_files(rejecting, data, tmp_path / "rejecting", spec=DataSpec(id_column="id"))
    found = read_out_of_scope(rejecting, load_model(rejecting).manifest)
    assert manifest["out_of_scope"]["score"] == found.score
    before, after = Predictions.load(tmp_path / "plain"), Predictions.load(tmp_path / "rejecting")
    expected, _ = found.reject(load_model(rejecting).decision_function(texts))
    assert after.out_of_scope == expected.tolist() and any(after.out_of_scope) and not all(after.out_of_scope)
    for rejected, labels, plain_labels in zip(after.out_of_scope, after.label_sets, before.label_sets):
        assert labels == (() if rejected else plain_labels)


def test_a_served_response_gives_no_label_and_the_verdict(model_dir, rejecting):
    texts = unknown(60, seed=11)[:5] + [t for t, _ in known(10, seed=11)]
    body = {"messages": [{"text": t} for t in texts]}
    with TestClient(create_app(rejecting, ServeSettings(max_wait_ms=0))) as client:
        results = client.post("/predict", json=body).json()["results"]
        info = client.get("/model").json()
    with TestClient(create_app(model_dir, ServeSettings(max_wait_ms=0))) as client:
        plain = client.post("/predict", json=body).json()["results"]
        assert client.get("/model").json()["out_of_scope"] is None
    assert all("out_of_scope" not in r for r in plain)
    found = read_out_of_scope(rejecting, load_model(rejecting).manifest)
    assert info["out_of_scope"]["score"] == found.score and info["out_of_scope"]["threshold"] == pytest.approx(found.threshold)
    scores = found.scores(load_model(rejecting).decision_function(texts))
    for result, before, score in zip(results, plain, scores):
        verdict = result["out_of_scope"]
        assert verdict["score"] == pytest.approx(score) and verdict["threshold"] == pytest.approx(found.threshold)
        assert verdict["rejected"] == (score > found.threshold)
        if verdict["rejected"]:
            assert result["labels"] == [] and result["confidences"] == {} and verdict["reason"] == "out_of_scope"
        else:
            assert result["labels"] == before["labels"] and "reason" not in verdict
    assert any(r["out_of_scope"]["rejected"] for r in results[:5]) and not all(r["out_of_scope"]["rejected"] for r in results)


def test_evaluate_reports_what_the_threshold_costs_on_test_data(model_dir, rejecting):
    test = as_messages(known(200, seed=12))
    result = evaluate_model(rejecting, test, cost=CostSettings(measure=False))
    plain = evaluate_model(model_dir, test, cost=CostSettings(measure=False))
    assert plain["out_of_scope"] is None and result["accuracy"] == plain["accuracy"]  # quality metrics are the model's own
    block = result["out_of_scope"]
    found = read_out_of_scope(rejecting, load_model(rejecting).manifest)
    model = load_model(rejecting)
    logits = model.decision_function(test.texts)
    rejected = found.scores(logits) > found.threshold
    correct = np.array([model.label_space.labels[i] == labels[0] for i, labels in zip(logits.argmax(1), test.labels)])
    assert block["rejected_share"] == pytest.approx(rejected.mean())
    assert block["accuracy_with_rejection"] == pytest.approx((correct & ~rejected).mean())


def test_an_onnx_copy_carries_the_reject_option_tied_to_itself(rejecting, tmp_path):
    pytest.importorskip("onnxruntime")
    from textdistill.compress.convert import compress_model
    from textdistill.students.static import StaticConfig, StaticStudent

    train = known(300, seed=20)
    student = StaticStudent(StaticConfig(embeddings="hash", dim=16, hash_buckets=2048, bigram_buckets=1024, hidden=0))
    student.label_space = LabelSpace.from_label_sets([(label,) for _, label in train], False)
    student.build_network([t for t, _ in train])
    source = student.save(tmp_path / "static", config={}, training_data={})
    fitted = fit_model(source, as_messages(train), as_messages(known(200, seed=21)), score="knn")
    copy = compress_model(source, tmp_path / "onnx")
    carried = read_out_of_scope(tmp_path / "onnx", copy.manifest)
    assert (carried.score, carried.threshold, carried.chosen_on) == ("knn", fitted.threshold, "static")
    texts = unknown(100, seed=22) + [t for t, _ in known(50, seed=22)]
    assert np.allclose(carried.scores(copy.decision_function(texts)), fitted.scores(load_model(source).decision_function(texts)), atol=1e-4)
    # the source saved again: its old reject option is refused, not applied to another model
    load_model(source).save(source, config={}, training_data={"sha256": "other"})
    with pytest.raises(ModelError, match="another model"):
        compress_model(source, tmp_path / "onnx-2")


def test_changed_statistics_are_refused(model_dir, tmp_path):
    directory = shutil.copytree(model_dir, tmp_path / "model")
    fit_model(directory, as_messages(known(300, seed=0)), as_messages(known(200, seed=1)), score="mahalanobis")
    (directory / STATS_FILE).write_bytes((directory / STATS_FILE).read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(ModelError, match="missing or changed"):
        read_out_of_scope(directory, load_model(directory).manifest)


def test_two_class_models_get_a_reject_option_too(tmp_path):
    rows = [(t, "refund" if label == "refund" else "other") for t, label in known(400, seed=30)]
    model = TfidfBaseline().fit([t for t, _ in rows], [(label,) for _, label in rows], multi_label=False)
    directory = model.save(tmp_path / "two", config={}, training_data={})
    found = fit_model(directory, as_messages(rows), as_messages([(t, "refund" if label == "refund" else "other") for t, label in known(200, seed=31)]))
    assert found.validation["in_scope_loss"] <= 0.01 and np.isfinite(found.threshold)


# -- the command line -----------------------------------------------------------------------------
def test_the_command_fits_prints_and_evaluate_shows_it(model_dir, tmp_path):
    directory = shutil.copytree(model_dir, tmp_path / "model")
    train, validation = write_csv(tmp_path / "train.csv", known(300, seed=0)), write_csv(tmp_path / "validation.csv", known(200, seed=1))
    examples = tmp_path / "not_ours.csv"
    with examples.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text",), *((t,) for t in unknown(100, seed=2) + NONSENSE)])
    result = run_cli("reject", directory, "--train", train, "--validation", validation, "--out-of-scope", examples, "--max-in-scope-loss", "0.02", "-q")
    assert result.returncode == 0, result.stdout
    found = read_out_of_scope(directory, load_model(directory).manifest)
    assert found.max_in_scope_loss == 0.02 and f"Score {found.score}" in result.stdout and "Known out-of-scope messages" in result.stdout
    assert (directory / OUT_OF_SCOPE_FILE).is_file()
    assert "textdistill reject" in run_cli("reject", "--help").stdout  # with an example
    evaluated = run_cli("evaluate", directory, "--data", validation, "--json", tmp_path / "eval.json", "--no-cost", "-q")
    assert evaluated.returncode == 0 and "Out of scope:" in evaluated.stdout


@pytest.mark.parametrize(
    ("option", "says"),
    [(["--score", "softmax"], "unknown"), (["--max-in-scope-loss", "1.5"], "below 1"), (["--max-in-scope-loss", "nan"], "below 1")],
)
def test_bad_settings_exit_2_with_what_to_do(model_dir, tmp_path, option, says):
    directory = shutil.copytree(model_dir, tmp_path / "model")
    data = write_csv(tmp_path / "v.csv", known(50, seed=1))
    result = run_cli("reject", directory, "--train", data, "--validation", data, *option)
    assert result.returncode == 2 and says in result.stderr and not (directory / OUT_OF_SCOPE_FILE).exists()


def test_a_multi_label_model_is_refused_with_what_to_use_instead(tmp_path):
    rows = [(t, label) for t, label in synthetic(200, seed=40)]
    model = TfidfBaseline().fit([t for t, _ in rows], [(label, "extra") if i % 3 == 0 else (label,) for i, (_, label) in enumerate(rows)], multi_label=True)
    directory = model.save(tmp_path / "multi", config={}, training_data={})
    data = tmp_path / "v.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "labels"), *rows[:50]])
    result = run_cli("reject", directory, "--train", data, "--validation", data)
    assert result.returncode == 2 and "multi-label" in result.stderr and "automate" in result.stderr



def test_the_report_has_an_out_of_scope_row_per_model_with_a_reject_option(model_dir, rejecting, tmp_path):
    from textdistill.evaluate.evaluation import write_evaluation
    from textdistill.evaluate.report import build_report, collect_evaluations

    test = as_messages(known(120, seed=13))
    files = [write_evaluation(evaluate_model(d, test, name=name, cost=CostSettings(measure=False)), tmp_path / f"{name}.json") for d, name in ((model_dir, "plain"), (rejecting, "rejecting"))]
    report = build_report(collect_evaluations(files), tmp_path / "report")
    block = json.loads(files[1].read_text())["out_of_scope"]
    markdown, html = report.markdown.read_text(), report.html.read_text()
    section = markdown.split("## Out of scope")[1].split("## Most confused")[0]
    assert f"| rejecting | {DEFAULT_SCORE} | {block['threshold']:.3f} |" in section and "| plain |" not in section
    assert "<h2>Out of scope</h2>" in html
