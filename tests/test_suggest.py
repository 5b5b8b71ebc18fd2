"""What to annotate next: strategies, near-duplicates, transfer-set reuse and the queue's round trip."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from textdistill.data.messages import DataSpec, load_messages
from textdistill.errors import TextdistillError
from textdistill.models.baseline import BaselineConfig
from textdistill.refine.suggest import Scores, k_center_greedy, label_uncertainty, suggest, uncertainty, write_queue
from textdistill.training.recipes import train_baseline
from textdistill.transfer import label_messages

EMAIL = DataSpec(text_columns=("subject", "body"), id_column="id")


@pytest.fixture(scope="module")
def email_model(sample_data, tmp_path_factory):
    train = load_messages(sample_data.train, EMAIL)
    validation = load_messages(sample_data.validation, EMAIL)
    directory = tmp_path_factory.mktemp("baseline")
    train_baseline(BaselineConfig(), train, validation, directory, spec=EMAIL)
    return directory


@pytest.fixture(scope="module")
def pool(sample_data):
    return load_messages(sample_data.unannotated, EMAIL, annotated=False)


def test_uncertainty_ranks_the_smallest_margin_first_and_multi_label_by_distance_to_the_threshold():
    proba = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.6, 0.3, 0.1]])
    values, reasons = uncertainty(Scores(proba, ["a", "b", "c"], False, np.full(3, 0.5)))
    assert list(np.argsort(-values)) == [1, 2, 0] and reasons[1].startswith("margin 0.05: a 0.40 vs b 0.35")
    # multi-label: 0.12 sits next to a 0.1 threshold, 0.45 is far from 0.9 in logits
    ml = np.array([[0.12, 0.45], [0.6, 0.05]])
    values, reasons = uncertainty(Scores(ml, ["x", "y"], True, np.array([0.1, 0.9])))
    assert values.argmax() == 0 and reasons[0] == "x at 0.12, threshold 0.10"


def test_label_strategy_looks_at_one_label_only():
    proba = np.array([[0.48, 0.5, 0.02], [0.1, 0.45, 0.45], [0.9, 0.05, 0.05]])
    values, _ = label_uncertainty(Scores(proba, ["a", "b", "c"], False, np.full(3, 0.5)), "a")
    assert values.argmax() == 0  # b vs c is a tie in row 1, but says nothing about a
    with pytest.raises(TextdistillError, match="names no label of the model"):
        label_uncertainty(Scores(proba, ["a", "b", "c"], False, np.full(3, 0.5)), "z")


def test_k_center_greedy_takes_the_uncovered_region_first():
    rng = np.random.default_rng(0)
    covered = rng.normal([5, 0], 0.1, size=(20, 2))  # annotated messages all point one way
    pool = np.vstack([rng.normal([5, 0], 0.1, size=(30, 2)), rng.normal([0, 5], 0.1, size=(3, 2)), rng.normal([-5, 0.5], 0.1, size=(3, 2))])
    picked, distances = k_center_greedy(pool, covered, 2)
    assert {p // 3 for p in picked} == {10, 11}  # one from each uncovered group, not two from the same
    assert distances[0] >= distances[1] > 0.5


@pytest.mark.parametrize("strategy", ["uncertainty", "entropy", "diverse", "label:Billing", "rebalance", "random"])
def test_each_strategy_picks_k_distinct_pool_messages(email_model, pool, sample_data, strategy):
    annotated = load_messages(sample_data.train, EMAIL)
    result = suggest(email_model, pool, strategy=strategy, k=12, annotated=annotated)
    indices = [p.index for p in result.picks]
    assert len(indices) == 12 == len(set(indices)) and all(p.reason for p in result.picks)
    assert all(set(p.predicted) <= set(result.labels) and len(p.confidence) == len(p.predicted) for p in result.picks)
    if strategy not in ("random", "rebalance"):  # scores are the strategy's, best first
        scores = [p.score for p in result.picks]
        assert scores == sorted(scores, reverse=True) or strategy == "diverse"
    assert (result.embedding is not None) == (strategy in ("diverse", "rebalance"))


def test_diverse_batches_are_less_alike_than_the_most_uncertain_messages(email_model, pool):
    from textdistill.models.base import load_model
    from textdistill.refine.suggest import message_embedder

    vectors = message_embedder(load_model(email_model), pool.texts, [])[0].pool(range(len(pool)))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def mean_similarity(strategy):
        rows = vectors[[p.index for p in suggest(email_model, pool, strategy=strategy, k=15).picks]]
        similarity = rows @ rows.T
        return (similarity.sum() - len(rows)) / (len(rows) * (len(rows) - 1))

    assert mean_similarity("diverse") < mean_similarity("uncertainty") - 0.02


def test_near_identical_messages_are_suggested_once(email_model, tmp_path):
    path = tmp_path / "pool.csv"
    rows = [("d1", "Refund", "I was charged twice, please refund me!!"), ("d2", "refund", "i was CHARGED twice please refund me"), ("d3", "Refund", "I was charged twice, please refund me 2024")]
    rows += [(f"o{i}", "Question", f"My parcel number {i} has not arrived and the invoice is wrong") for i in range(3)]
    rows += [("x1", "Account", "password reset link expired, cannot log in"), ("x2", "Thanks", "great service, thank you")]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("id", "subject", "body"), *rows])
    messages = load_messages(path, EMAIL, annotated=False)
    result = suggest(email_model, messages, strategy="random", k=8)
    chosen = [messages.ids[p.index] for p in result.picks]
    assert len([i for i in chosen if i.startswith("d")]) == 1 and len([i for i in chosen if i.startswith("o")]) == 1
    assert result.duplicates_skipped == 4 and len(chosen) == 4


def test_the_transfer_sets_logits_are_reused_and_another_models_refused(email_model, pool, sample_data, tmp_path):
    transfer = tmp_path / "transfer"
    label_messages(email_model, pool.subset(range(30)), transfer)
    fresh = suggest(email_model, pool, k=10)
    reused = suggest(email_model, pool, k=10, transfer_dir=transfer)
    assert reused.reused == 30 and fresh.reused == 0
    assert np.allclose(reused.probabilities, fresh.probabilities, atol=1e-5)
    assert [p.index for p in reused.picks] == [p.index for p in fresh.picks]
    other = tmp_path / "other"
    train_baseline(BaselineConfig(C=1.0), load_messages(sample_data.train, EMAIL), load_messages(sample_data.validation, EMAIL), other, spec=EMAIL)
    with pytest.raises(TextdistillError, match="another model's"):
        suggest(other, pool, k=5, transfer_dir=transfer)


def test_rebalance_needs_the_annotated_messages_and_annotated_ids_are_never_suggested(email_model, pool, sample_data):
    with pytest.raises(TextdistillError, match="pass --train ANNOTATED"):
        suggest(email_model, pool, strategy="rebalance", k=5)
    with pytest.raises(TextdistillError, match="k must be at least 1"):
        suggest(email_model, pool, k=0)
    half = pool.subset(range(0, len(pool), 2))
    result = suggest(email_model, pool, k=20, annotated=half)
    assert not {pool.ids[p.index] for p in result.picks} & set(half.ids)


def test_two_class_queue_ranks_messages_near_the_boundary(tmp_path):
    rows = [("t%d" % i, f"urgent outage server down {i}", "yes") for i in range(40)] + [("n%d" % i, f"newsletter weekly digest {i}", "no") for i in range(40)]
    train = tmp_path / "train.csv"
    with train.open("w", newline="") as handle:
        csv.writer(handle).writerows([("id", "text", "label"), *rows])
    spec = DataSpec(id_column="id")
    messages = load_messages(train, spec)
    model = tmp_path / "model"
    train_baseline(BaselineConfig(), messages.subset(range(0, 80, 2)), messages.subset(range(1, 80, 2)), model, spec=spec)
    pool_path = tmp_path / "pool.csv"
    with pool_path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("id", "text"), ("p1", "urgent outage server down now"), ("p2", "weekly newsletter digest"), ("p3", "urgent weekly newsletter outage digest")])
    result = suggest(model, load_messages(pool_path, spec, annotated=False), k=1)
    assert result.picks[0].index == 2 and result.picks[0].reason.startswith("margin")


def test_the_queue_round_trips_into_train_after_annotation(email_model, pool, sample_data, tmp_path):
    result = suggest(email_model, pool, strategy="diverse", k=10)
    queue = write_queue(result, pool, tmp_path / "queue.csv", EMAIL)
    with queue.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "subject", "body", "labels", "annotated", "rank", "predicted", "confidence", "reason", "strategy"]
    assert [r["id"] for r in rows] == [pool.ids[p.index] for p in result.picks] and {r["annotated"] for r in rows} == {"false"}
    # the annotator fills eight rows (keeping the model's labels where right) and leaves two
    for row in rows[:8]:
        row["labels"], row["annotated"] = row["predicted"] or "Feedback", "true"
    with queue.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    back = load_messages(queue, DataSpec(text_columns=("subject", "body"), id_column="id", annotated_column="annotated"))
    annotated = back.annotated()
    assert annotated.ids == [r["id"] for r in rows[:8]] and len(back.unannotated()) == 2
    assert annotated.texts == [pool.texts[p.index] for p in result.picks[:8]]
    assert annotated.labels == [tuple(sorted(r["labels"].split(";"))) for r in rows[:8]]
    # ... and appends the queue to the annotated file for the next round
    with sample_data.train.open(newline="") as handle:
        earlier = [{**r, "annotated": "true"} for r in csv.DictReader(handle)]
    combined = tmp_path / "train-round2.csv"
    with combined.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(earlier + rows)
    trained = subprocess.run(
        [sys.executable, "-m", "textdistill", "baseline", "--train", str(combined), "--validation", str(sample_data.validation), "--text-column", "subject",
         "--text-column", "body", "--id-column", "id", "--annotated-column", "annotated", "--out", str(tmp_path / "round2"), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )
    assert trained.returncode == 0 and f"{len(earlier) + 8} training messages" in trained.stdout, trained.stderr


def test_cli_writes_the_queue_and_refuses_bad_requests_cleanly(email_model, sample_data, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "textdistill", "suggest", str(email_model), *map(str, args)], capture_output=True, text=True, timeout=300)

    done = run("--pool", sample_data.unannotated, "--out", tmp_path / "q.csv", "--k", 7, "--quiet")
    assert done.returncode == 0 and "Queue: 7 of 50 messages" in done.stdout, done.stderr
    refused = run("--pool", sample_data.unannotated, "--out", tmp_path / "r.csv", "--strategy", "smart")
    assert refused.returncode == 2 and "strategy 'smart' is unknown" in refused.stderr and "Traceback" not in refused.stderr
    missing = run("--pool", tmp_path / "nope.csv", "--out", tmp_path / "r.csv")
    assert missing.returncode == 2 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr
