"""Evaluating a saved model: quality, honest cost numbers, unseen labels."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from textdistill.data.email import clean_email
from textdistill.data.messages import DataSpec, load_messages
from textdistill.errors import DataError
from textdistill.evaluate.evaluation import CostSettings, evaluate_model, predict_proba_batched
from textdistill.models import TfidfBaseline

REQUIRED = ["accuracy", "micro_f1", "macro_f1", "latency_ms_p50", "latency_ms_p95", "throughput_per_s", "peak_rss_mb", "size_mb", "n_params", "per_label"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    texts = ["refund please", "money back", "parcel late", "where is my parcel", "password reset", "cannot log in"] * 3
    labels = [("refund",), ("refund",), ("delivery",), ("delivery",), ("login",), ("login",)] * 3
    directory = tmp_path_factory.mktemp("m") / "baseline"
    TfidfBaseline().fit(texts, labels, multi_label=False).save(directory)
    return directory


def write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def test_evaluation_has_quality_and_cost(model_dir, tmp_path):
    test = load_messages(write(tmp_path / "t.csv", [["refund my money", "refund"], ["parcel is late", "delivery"], ["log in fails", "login"]]))
    result = evaluate_model(model_dir, test, cost=CostSettings(threads=1, latency_samples=20, warmup=2, min_messages=64, repeats=1))
    for key in REQUIRED:
        assert key in result
    assert result["accuracy"] == 1.0 and result["macro_f1"] == 1.0
    assert result["latency_ms_p95"] >= result["latency_ms_p50"] > 0
    assert result["throughput_per_s"] > 0 and result["peak_rss_mb"] > 20 and result["size_mb"] > 0
    assert result["threads"] == 1 and result["n_messages"] == 3 and result["skipped_rows"] == 0
    # three messages make three length groups, each timed, each the length of its message
    by_length = result["latency_by_length"]
    assert [(q["min_chars"], q["max_chars"]) for q in by_length] == [(n, n) for n in sorted(map(len, test.texts))]
    assert sum(q["n"] for q in by_length) == 20 and all(q["n"] > 0 and 0 < q["p50_ms"] <= q["p95_ms"] for q in by_length)
    assert result["text_cleaning"] is None  # clean-up was off


def test_label_never_seen_in_training(model_dir, tmp_path):
    path = write(tmp_path / "t.csv", [["refund my money", "refund"], ["new thing", "warranty"]])
    with pytest.raises(DataError) as info:
        evaluate_model(model_dir, load_messages(path), cost=CostSettings(measure=False))
    assert info.value.row == 2 and info.value.column == "label" and "never seen in training" in str(info.value)
    result = evaluate_model(model_dir, load_messages(path), skip_bad_rows=True, cost=CostSettings(measure=False))
    assert result["n_messages"] == 1 and result["skipped_rows"] == 1
    assert result["skipped"][0]["row"] == 2


def test_skipped_rows_from_loading_are_counted(model_dir, tmp_path):
    path = write(tmp_path / "t.csv", [["refund my money", "refund"], ["", "login"]])
    messages = load_messages(path, DataSpec(skip_bad_rows=True))
    result = evaluate_model(model_dir, messages, cost=CostSettings(measure=False))
    assert result["skipped_rows"] == 1 and result["latency_ms_p50"] is None


THREAD = "\n\nOn Mon, 2 Mar 2026, Support <s@example.com> wrote:\n" + "> Your parcel left our depot on Friday.\n" * 30


def test_cleaning_of_the_evaluated_messages_only(model_dir, tmp_path):
    rows = [["refund my money" + THREAD, "refund"], ["parcel is late" + THREAD[:300], "delivery"], ["log in fails", "login"],
            ["new thing" + THREAD, "warranty"]]  # fmt: skip
    messages = load_messages(write(tmp_path / "t.csv", rows), DataSpec(clean_email=True))
    result = evaluate_model(model_dir, messages, skip_bad_rows=True, cost=CostSettings(measure=False))
    evaluated = [text.strip() for text, _ in rows[:3]]  # the warranty message is skipped: never seen in training
    before, after = [len(t) for t in evaluated], [len(clean_email(t)) for t in evaluated]
    assert result["text_cleaning"] == {
        "messages": 3,
        "chars_before_p50": pytest.approx(np.median(before)),
        "chars_before_p95": pytest.approx(np.percentile(before, 95)),
        "chars_after_p50": pytest.approx(np.median(after)),
        "chars_after_p95": pytest.approx(np.percentile(after, 95)),
    }
    assert result["latency_by_length"] is None


def test_the_cli_prints_and_records_what_clean_up_removed(model_dir, tmp_path):
    body = "refund my money" + THREAD
    data = write(tmp_path / "t.csv", [[body, "refund"], ["log in fails", "login"]])
    out = tmp_path / "e.json"
    done = subprocess.run(
        [sys.executable, "-m", "textdistill", "evaluate", str(model_dir), "--data", str(data), "--json", str(out), "--clean-email", "--no-cost", "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    before = np.median([len(body.strip()), len("log in fails")])
    after = np.median([len(clean_email(body.strip())), len("log in fails")])
    assert f"{data}: clean-up: median {before:,.0f} -> {after:,.0f} characters" in done.stderr
    assert json.loads(out.read_text())["text_cleaning"]["chars_before_p50"] == pytest.approx(before)


class LengthModel:
    """Records the lengths of each batch it is given and answers each message's length."""

    def __init__(self):
        self.batches = []

    def predict_proba(self, texts):
        self.batches.append([len(t) for t in texts])
        return np.array([[len(t), 1.0] for t in texts])


def test_evaluation_predicts_in_batches_of_similar_length():
    rng = np.random.default_rng(0)
    texts = ["x" * int(n) for n in rng.integers(1, 5000, size=600)]
    model = LengthModel()
    proba = predict_proba_batched(model, texts)
    assert [len(batch) for batch in model.batches] == [256, 256, 88]
    flat = [n for batch in model.batches for n in batch]
    assert flat == sorted(flat)  # shortest first: one long email shares a batch only with long ones
    np.testing.assert_array_equal(proba[:, 0], [len(t) for t in texts])  # rows in the order of the texts
