"""Evaluating a saved model: quality, honest cost numbers, unseen labels."""

import csv

import pytest

from textdistill.data.messages import DataSpec, load_messages
from textdistill.errors import DataError
from textdistill.evaluate.evaluation import CostSettings, evaluate_model
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
