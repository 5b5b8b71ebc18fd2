"""Model rating: coverage against a direct count at the thresholds, the fallback without them,
balance near 0.5 for a random annotated subset and high for a biased one, under-covered
clusters in the missing region, factors and advice, two-class and multi-label models, the
evaluate JSON and report, bad input."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from cli_in_process import run_cli
from synthetic import requests, synthetic, two_class

from textdistill.data.labels import LabelSpace
from textdistill.data.messages import MessageSet
from textdistill.evaluate.evaluation import CostSettings, evaluate_model
from textdistill.models import TfidfBaseline, load_model
from textdistill.models.automation import Automation, LabelAutomation
from textdistill.refine.rating import (
    FALLBACK_CONFIDENCE,
    GOOD,
    MIN_EXAMPLES,
    NOT_MEASURED,
    OK,
    POOR,
    balance,
    combine,
    coverage,
    rate,
    rate_model,
)


def messages(rows: list[tuple[str, tuple[str, ...] | None]], prefix: str, source: str = "data.csv") -> MessageSet:
    n = len(rows)
    multi = any(labels is not None and len(labels) != 1 for _, labels in rows)
    return MessageSet([t for t, _ in rows], [f"{prefix}{i}" for i in range(n)], [labels for _, labels in rows], list(range(1, n + 1)), source, multi, label_column="label")


def single(rows: list[tuple[str, str]], prefix: str, source: str = "data.csv") -> MessageSet:
    return messages([(text, (label,)) for text, label in rows], prefix, source)


def unannotated(texts: list[str], prefix: str = "p") -> MessageSet:
    return messages([(text, None) for text in texts], prefix, "pool.csv")


def save(model: TfidfBaseline, directory: Path) -> Path:
    return model.save(directory, config={}, training_data={"sha256": directory.name})


@pytest.fixture(scope="module")
def intents_model(tmp_path_factory) -> Path:
    """A TF-IDF model of the five synthetic intents, saved (no automation thresholds)."""
    train = synthetic(400, seed=0)
    return save(TfidfBaseline().fit([t for t, _ in train], [(label,) for _, label in train], multi_label=False), tmp_path_factory.mktemp("intents") / "model")


def automation_for(space: LabelSpace, thresholds: dict[str, float | None]) -> Automation:
    """Hand-made thresholds (None: the label is unreached), for the labels of ``space``."""
    entries = [LabelAutomation(label, 0.95, t, None, None, 10, None, t is not None) for label, t in thresholds.items()]
    return Automation(0.95, entries, model={"hierarchy_sep": space.hierarchy_sep}, validation={})


# -- coverage ------------------------------------------------------------------------------------
def test_coverage_counts_exactly_the_messages_at_or_above_their_label_thresholds(intents_model):
    model = load_model(intents_model)
    space = model.label_space
    texts = [t for t, _ in synthetic(300, seed=5)]
    proba = model.predict_proba(texts)
    predicted = model.predict_label_sets(texts, proba)
    top, confidence = proba.argmax(1), proba.max(1)
    labels = list(space.labels)
    # each label's threshold is one of its own messages' confidences (>= must count it), one label is never automated
    thresholds = {label: float(np.median(confidence[top == j])) for j, label in enumerate(labels)}
    thresholds["praise"] = None
    block = coverage(space, proba, predicted, automation_for(space, thresholds))
    expected = np.array([thresholds[labels[j]] is not None and c >= thresholds[labels[j]] for j, c in zip(top, confidence)])
    assert 0 < expected.sum() < len(texts)
    assert block["n_covered"] == expected.sum() and block["share"] == pytest.approx(expected.mean())
    per_label = {row["label"]: row for row in block["per_label"]}
    for j, label in enumerate(labels):
        assert per_label[label]["covered"] == (expected & (top == j)).sum()
        assert per_label[label]["predicted"] == (top == j).sum()
    assert per_label["praise"]["covered"] == 0 and per_label["praise"]["predicted"] > 0
    assert block["by"] == "automation" and "automation threshold" in block["rule"]


def test_multi_label_coverage_counts_the_automated_labels_of_each_message():
    rng = np.random.default_rng(3)
    labels = ("a", "b", "c")
    space = LabelSpace(labels, True)
    proba = rng.random((200, 3))
    predicted = space.predict(proba, np.full(3, 0.4))
    thresholds = {"a": 0.6, "b": 0.9, "c": None}
    block = coverage(space, proba, predicted, automation_for(space, thresholds))
    automated = np.column_stack([(proba[:, j] >= 0.4) & (proba[:, j] >= (thresholds[label] or np.inf)) for j, label in enumerate(labels)])
    assert block["n_covered"] == automated.any(1).sum()
    assert [row["covered"] for row in block["per_label"]] == automated.sum(0).tolist()
    # without thresholds: a predicted label at confidence >= 0.5; 0.4 <= p < 0.5 is predicted, not covered
    fallback = coverage(space, proba, predicted, None)
    assert fallback["n_covered"] == ((proba >= 0.4) & (proba >= FALLBACK_CONFIDENCE)).any(1).sum()
    assert fallback["n_covered"] < sum(map(bool, predicted))


def test_without_automation_thresholds_coverage_is_the_top_confidence_at_half_and_says_so(intents_model):
    model = load_model(intents_model)
    texts = [t for t, _ in synthetic(150, seed=6)] + ["weather forecast for tomorrow", "my cat likes fish", "hello"]
    rating = rate_model(model, intents_model, unannotated(texts))
    block = rating["coverage"]
    assert block["by"] == "confidence" and "no automation.json" in block["rule"]
    assert block["n_covered"] == (model.predict_proba(texts).max(1) >= FALLBACK_CONFIDENCE).sum()
    factor = next(f for f in rating["factors"] if f["key"] == "coverage")
    assert "no automation.json" in factor["detail"] and not rating["warnings"]


def test_low_coverage_is_warned_about(intents_model):
    model = load_model(intents_model)
    off_topic = ["weather forecast for tomorrow", "my cat likes fish", "the meeting moved to friday", "football scores tonight"] * 5
    rating = rate_model(model, intents_model, unannotated([t for t, _ in synthetic(10, seed=6)] + off_topic))
    share = rating["coverage"]["share"]
    assert share < 0.7 and rating["warnings"] == [f"coverage is low (under 70%): {rating['factors'][2]['detail']}"]
    assert rating["factors"][2]["status"] == POOR and "suggest --strategy uncertainty" in rating["factors"][2]["advice"]


# -- balance -------------------------------------------------------------------------------------
def test_balance_is_near_half_for_a_random_annotated_subset_and_high_for_one_that_keeps_some_intents(intents_model):
    model = load_model(intents_model)
    rows = synthetic(600, seed=7)
    random.Random(0).shuffle(rows)
    pool = [t for t, _ in rows[:300]]
    random_subset = [t for t, _ in rows[300:]]
    biased = [t for t, label in synthetic(900, seed=8) if label in ("refund", "delivery")][:300]
    predicted = model.predict_label_sets(pool)
    fair, skewed = balance(model, pool, predicted, random_subset), balance(model, pool, predicted, biased)
    assert fair["embedding"] == "tfidf-lsa" and abs(fair["auroc"] - 0.5) < 0.1
    # 40 % of the pool are refund and delivery messages, as alike the annotated ones as the fair subset: at most 0.6 + 0.4 / 2 = 0.8
    assert skewed["auroc"] > 0.72


def test_the_under_covered_clusters_are_the_intent_the_annotated_set_lacks(intents_model):
    model = load_model(intents_model)
    rows = synthetic(800, seed=9)
    pool = [t for t, _ in rows[:400]]
    annotated = [t for t, label in rows[400:] if label != "refund"]
    label_of = dict(rows)
    block = balance(model, pool, model.predict_label_sets(pool), annotated)
    under = [c for c in block["clusters"] if c["under_covered"]]
    assert under and block["n_under_covered"] == len(under)
    assert all(c["predicted_mostly"] == "refund" for c in under)
    assert all(label_of[example] == "refund" for c in under for example in c["examples"])
    refund_share = sum(label == "refund" for _, label in rows[:400]) / 400
    assert sum(c["pool_share"] for c in under) == pytest.approx(refund_share, abs=0.05)  # the region, not a sliver of it
    assert block["clusters"][0]["under_covered"]  # most under-covered first


def test_balance_is_not_measured_on_too_few_messages(intents_model):
    model = load_model(intents_model)
    block = balance(model, ["a refund please"] * 20, [("refund",)] * 20, ["where is my parcel"] * 3)
    assert not block["measured"] and "at least 10" in block["why_not"]


# -- the rating ----------------------------------------------------------------------------------
def test_the_rating_has_every_factor_with_a_status_and_advice_where_it_is_not_good(intents_model):
    rows = synthetic(300, seed=10)
    annotated = [r for r in rows if r[1] != "cancel"] + [r for r in rows if r[1] == "cancel"][: MIN_EXAMPLES - 2]
    validation = single(synthetic(150, seed=11), "v", "validation.csv")
    pool = unannotated([t for t, _ in synthetic(200, seed=12)])
    rating = rate(intents_model, pool, annotated=single(annotated, "a", "train.csv"), validation=validation)
    factors = {f["key"]: f for f in rating["factors"]}
    assert list(factors) == ["mean_ap", "worst_labels", "coverage", "balance", "few_examples"]
    assert all(f["status"] in (GOOD, OK, POOR) and 0 <= f["score"] <= 100 for f in factors.values())
    assert all(f["advice"] for f in factors.values() if f["status"] != GOOD)
    assert factors["few_examples"]["value"] == 1 and "cancel (3)" in factors["few_examples"]["detail"]
    assert f"annotate at least {MIN_EXAMPLES} messages of cancel" in factors["few_examples"]["advice"]
    assert rating["annotated_per_label"]["cancel"] == MIN_EXAMPLES - 2
    assert "validation.csv" in factors["mean_ap"]["detail"]
    assert rating["score"] == round(np.mean([f["score"] for f in factors.values()]))
    # balance advice points at suggest's rebalance strategy
    assert "--strategy rebalance" in (factors["balance"]["advice"] or "--strategy rebalance")


def test_a_biased_annotated_set_rates_poor_on_balance_and_is_told_to_rebalance(intents_model):
    rows = synthetic(600, seed=13)
    annotated = single([r for r in rows if r[1] in ("refund", "login")], "a", "train.csv")
    pool = unannotated([t for t, _ in synthetic(300, seed=14)])
    factor = next(f for f in rate(intents_model, pool, annotated=annotated)["factors"] if f["key"] == "balance")
    assert factor["status"] == POOR and "suggest" in factor["advice"] and "--strategy rebalance" in factor["advice"]


def test_the_rating_combines_factor_scores_by_their_mean_and_a_poor_factor_keeps_it_from_good():
    def factor(score, status):
        return {"score": score, "status": status}

    assert combine([factor(90, GOOD), factor(80, GOOD), factor(None, NOT_MEASURED)]) == (85, GOOD)
    assert combine([factor(100, GOOD), factor(100, GOOD), factor(55, POOR)]) == (85, OK)
    assert combine([factor(50, POOR), factor(60, OK)]) == (55, POOR)
    assert combine([factor(None, NOT_MEASURED)]) == (None, NOT_MEASURED)


def test_annotated_messages_leave_the_pool_by_id_and_an_all_annotated_pool_is_refused(intents_model):
    from textdistill.errors import DataError

    rows = synthetic(60, seed=15)
    annotated = single(rows, "m")
    pool = messages([(t, None) for t, _ in rows] + [("cancel my plan please", None)], "m", "pool.csv")
    rating = rate(intents_model, pool, annotated=annotated)
    assert rating["pool"]["n_rated"] == 1 and rating["pool"]["n_annotated_left_out"] == 60
    with pytest.raises(DataError, match="no unannotated messages"):
        rate(intents_model, pool.subset(range(60)), annotated=annotated)


def test_two_class_and_multi_label_models_are_rated(tmp_path):
    spam = two_class(300, seed=0)
    model = save(TfidfBaseline().fit([t for t, _ in spam], [(label,) for _, label in spam], multi_label=False), tmp_path / "spam")
    rating = rate(model, unannotated([t for t, _ in two_class(120, seed=1)]), annotated=single(spam, "a"), validation=single(two_class(100, seed=2), "v"))
    assert [row["label"] for row in rating["coverage"]["per_label"]] == ["ham", "spam"]
    assert rating["score"] is not None and all(f["status"] != NOT_MEASURED for f in rating["factors"])

    first, second = synthetic(300, seed=3), synthetic(300, seed=103)
    pairs = [((a, (la,)) if i % 3 else (f"{a} Also, {b}", tuple(sorted({la, lb})))) for i, ((a, la), (b, lb)) in enumerate(zip(first, second))]
    multi = save(TfidfBaseline().fit([t for t, _ in pairs], [labels for _, labels in pairs], multi_label=True), tmp_path / "multi")
    rated = rate(multi, unannotated(requests(100, seed=4)), annotated=messages(pairs, "a"))
    assert rated["coverage"]["n_messages"] == 100 and rated["balance"]["measured"]
    assert {row["label"] for row in rated["coverage"]["per_label"]} == set(load_model(multi).label_space.labels)


# -- evaluate, report and CLI --------------------------------------------------------------------
def write_csv(path: Path, rows: list[tuple[str, str]], columns=("id", "text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows((f"{path.stem}{i}", *row) for i, row in enumerate(rows))
    return path


def test_evaluate_adds_the_rating_block_and_the_report_shows_it_at_the_top(intents_model, tmp_path):
    from textdistill.evaluate.report import build_report

    test = single(synthetic(120, seed=16), "t", "test.csv")
    pool = unannotated([t for t, _ in synthetic(150, seed=17)])
    annotated = single(synthetic(200, seed=18), "a", "train.csv")
    result = evaluate_model(intents_model, test, cost=CostSettings(measure=False), pool=pool, annotated=annotated)
    rating = result["rating"]
    assert [f["key"] for f in rating["factors"]] == ["mean_ap", "worst_labels", "coverage", "balance", "few_examples"]
    mean_ap = np.mean([row["average_precision"] for row in result["per_label"]])
    assert rating["factors"][0]["value"] == pytest.approx(mean_ap) and "test.csv" in rating["factors"][0]["detail"]
    assert evaluate_model(intents_model, test, cost=CostSettings(measure=False)).get("rating") is None
    files = build_report([result], tmp_path / "report")
    markdown, html = files.markdown.read_text(), files.html.read_text()
    heading = f"model: {rating['score']}/100 ({rating['status']})"
    assert "## Model rating" in markdown and heading in markdown
    assert markdown.index("## Model rating") < markdown.index("## Models side by side")
    assert '<section id="rating">' in html and heading in html and "Balance" in html


def test_rate_prints_the_rating_and_writes_json_and_evaluate_takes_pool_and_train(intents_model, tmp_path):
    train = write_csv(tmp_path / "train.csv", synthetic(200, seed=19))
    validation = write_csv(tmp_path / "validation.csv", synthetic(100, seed=20))
    pool = write_csv(tmp_path / "pool.csv", [(t,) for t, _ in synthetic(150, seed=21)], ("id", "text"))
    result = run_cli("rate", intents_model, "--train", train, "--pool", pool, "--validation", validation, "--id-column", "id", "--json", tmp_path / "r.json", "-q")
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "r.json").read_text())
    assert f"Rating: {saved['score']}/100 ({saved['status']})" in result.stdout
    assert all(f["name"] in result.stdout for f in saved["factors"]) and "no automation.json" in result.stdout
    assert "textdistill rate" in run_cli("rate", "--help").stdout  # with an example
    evaluated = run_cli("evaluate", intents_model, "--data", validation, "--json", tmp_path / "e.json", "--no-cost", "--pool", pool, "--train", train, "-q")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "Rating: " in evaluated.stdout and json.loads((tmp_path / "e.json").read_text())["rating"]["balance"]["measured"]


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("pool without text column", ["pool.csv", "'text'"]),
        ("empty label", ["train.csv", "row 3", "'label'"]),
        ("unknown validation label", ["validation.csv", "row 2", "'unheard-of'"]),
        ("train without pool", ["--train", "--pool"]),
    ],
)
def test_bad_input_exits_2_naming_file_row_and_column(intents_model, tmp_path, case, says):
    rows = synthetic(30, seed=22)
    train = write_csv(tmp_path / "train.csv", [(text, "" if i == 2 and case == "empty label" else label) for i, (text, label) in enumerate(rows)])
    validation = write_csv(tmp_path / "validation.csv", [(rows[0][0], "refund"), (rows[1][0], "unheard-of")])
    pool = write_csv(tmp_path / "pool.csv", [(t,) for t, _ in rows], ("id", "body" if case == "pool without text column" else "text"))
    if case == "train without pool":
        command = ["evaluate", intents_model, "--data", validation, "--json", tmp_path / "e.json", "--train", train, "--no-cost"]
    else:
        command = ["rate", intents_model, "--train", train, "--pool", pool, "--id-column", "id"]
        command += ["--validation", validation] if case == "unknown validation label" else []
    result = run_cli(*command)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert all(text in " ".join(result.stderr.split()) for text in says), result.stderr


def test_messages_the_reject_option_rejects_are_not_covered(intents_model, tmp_path):
    import shutil

    from textdistill.models.out_of_scope import fit_model

    directory = shutil.copytree(intents_model, tmp_path / "rejecting")
    rows = synthetic(300, seed=31)
    fit_model(directory, single(rows, "t"), single(synthetic(200, seed=32), "v"), score="msp", max_in_scope_loss=0.05)
    texts = [t for t, _ in synthetic(150, seed=6)] + ["weather forecast for tomorrow", "my cat likes fish", "hello"]
    model = load_model(directory)
    found = rate_model(model, directory, unannotated(texts))["coverage"]
    plain = rate_model(load_model(intents_model), intents_model, unannotated(texts))["coverage"]
    proba = model.predict_proba(texts)
    rejected = 1 - proba.max(1) > json.loads((directory / "out_of_scope.json").read_text())["threshold"]
    assert found["n_covered"] == ((proba.max(1) >= FALLBACK_CONFIDENCE) & ~rejected).sum() < plain["n_covered"]
    assert "out of scope" in found["rule"] and "out of scope" not in plain["rule"]
