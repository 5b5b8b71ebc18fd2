"""Evaluating a saved model: quality, honest cost numbers, unseen labels."""

import csv
import json

import numpy as np
import pytest
from cli_in_process import run_cli

from textdistill.data.email import clean_email
from textdistill.data.messages import DataSpec, load_messages
from textdistill.errors import DataError
from textdistill.data.labels import LabelSpace
from textdistill.evaluate.evaluation import CostSettings, evaluate_model, model_role, per_message_counts, predict_proba_batched
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
    done = run_cli("evaluate", model_dir, "--data", data, "--json", out, "--clean-email", "--no-cost", "--quiet")
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


def test_evaluation_records_role_per_message_results_and_load(model_dir, tmp_path):
    rows = [["refund my money", "refund"], ["parcel is late", "delivery"], ["log in fails", "login"], ["money back now", "login"]]
    test = load_messages(write(tmp_path / "t.csv", rows))
    result = evaluate_model(model_dir, test, cost=CostSettings(threads=1, latency_samples=5, warmup=1, min_messages=8, repeats=1))
    assert (result["role"], result["description"]) == ("baseline", "TF-IDF + linear classifier")
    assert result["train_messages"] is None  # saved without a training-data record; `baseline` writes one
    per_message = result["per_message"]
    assert per_message["metric"] == "accuracy"
    correct = [int(c) for c in per_message["correct"]]
    assert len(correct) == result["n_messages"] == 4 and correct[3] == 0  # the last message is labelled "login" but says refund
    assert sum(correct) / len(correct) == result["accuracy"]
    again = evaluate_model(model_dir, load_messages(write(tmp_path / "u.csv", rows)), cost=CostSettings(measure=False))
    assert again["test_sha256"] == result["test_sha256"]  # same messages, same order: pairable
    shuffled = evaluate_model(model_dir, load_messages(write(tmp_path / "v.csv", rows[::-1])), cost=CostSettings(measure=False))
    assert shuffled["test_sha256"] != result["test_sha256"]
    before, after = result["load_average"]["before"], result["load_average"]["after"]
    assert len(before) == len(after) == 3 and all(load >= 0 for load in before + after)


def test_model_role_from_the_manifest_config():
    compressed = model_role("onnx", {"compression": {"precision": "int8", "source": "/runs/a/models/static", "source_kind": "static"}})
    assert compressed == {"role": "compressed", "source": "static", "description": "int8 ONNX copy of static"}
    student = model_role("bilstm", {"distillation": {"teachers": ["/runs/a/models/teacher"]}})
    assert (student["role"], student["teacher"]) == ("student", "teacher")
    teacher = model_role("transformer", {"encoder": {"model": "bert-base-uncased"}, "method": "lora"})
    assert teacher == {"role": "teacher", "description": "bert-base-uncased, lora fine-tuning"}
    assert model_role("early_exit", {})["role"] == "student"
    assert model_role("something-else", {})["role"] == "model"


@pytest.mark.parametrize("multi_label", [True, False], ids=["multi-label micro-F1", "two-class positive F1"])
def test_per_message_counts_reproduce_the_headline_metric(multi_label):
    import numpy as np
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    if multi_label:
        space = LabelSpace(("a", "b", "c"), True, None)
        true = [tuple(label for label in "abc" if rng.random() < 0.5) or ("a",) for _ in range(60)]
        pred = [tuple(label for label in "abc" if rng.random() < 0.5) for _ in range(60)]
        expected = f1_score(space.encode(true), space.encode(pred), average="micro")
        positive = None
    else:
        space = LabelSpace(("ham", "spam"), False, None)
        true = [("spam",) if rng.random() < 0.3 else ("ham",) for _ in range(60)]
        pred = [("spam",) if rng.random() < 0.3 else ("ham",) for _ in range(60)]
        expected = f1_score([t[0] for t in true], [p[0] for p in pred], pos_label="spam")
        positive = "spam"
    counts = per_message_counts(space, true, pred, positive)
    assert counts["metric"] == ("micro_f1" if multi_label else "positive_f1")
    tp, fp, fn = (sum(int(c) for c in counts[key]) for key in ("tp", "fp", "fn"))  # one digit per message here
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(expected)


def test_the_teachers_baseline_check_travels_into_its_evaluation(tmp_path):
    texts, labels = ["refund please", "parcel late"] * 4, [("refund",), ("delivery",)] * 4
    check = {"metric": "accuracy", "teacher": 0.9, "baseline": 0.93, "teacher_is_better": False}
    directory = TfidfBaseline().fit(texts, labels, multi_label=False).save(tmp_path / "m", metrics={"validation": check})
    test = load_messages(write(tmp_path / "t.csv", [["refund please", "refund"]]))
    assert evaluate_model(directory, test, cost=CostSettings(measure=False))["teacher_check"] == check


def test_models_without_a_baseline_check_have_none(model_dir, tmp_path):
    test = load_messages(write(tmp_path / "t.csv", [["refund please", "refund"]]))
    assert "teacher_check" not in evaluate_model(model_dir, test, cost=CostSettings(measure=False))


def test_console_summary_leads_with_the_headline_metric() -> None:
    from textdistill.evaluate.evaluation import quality_summary

    multi = {"multi_label": True, "accuracy": None, "micro_f1": 0.8812, "macro_f1": 0.8588, "positive_class": None}
    assert quality_summary(multi) == "micro-F1 0.881, macro-F1 0.859"
    single = {"multi_label": False, "accuracy": 0.9, "micro_f1": 0.9, "macro_f1": 0.85, "positive_class": None}
    assert quality_summary(single, digits=2) == "accuracy 0.90, macro-F1 0.85"
    two = {**single, "positive_class": {"label": "spam", "precision": 0.8, "recall": 0.7, "f1": 0.7467}}
    assert quality_summary(two) == "positive class 'spam' F1 0.747, macro-F1 0.850"
