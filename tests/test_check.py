"""`textdistill check`: planted annotation errors are found (flipped labels, missed labels,
two-class data), the CSV reads back through the loader, bad input is refused with exit code 2,
and a transformer teacher's frozen features work as well as TF-IDF."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import numpy as np
import pytest
from cli_in_process import run_cli

from textdistill.data.messages import DataSpec, MessageSet, load_messages
from textdistill.refine.check import check_labels

from synthetic import synthetic, two_class

pytest.importorskip("cleanlab")

# The synthetic intents as hierarchical labels, so the check runs on LabelSpace's path columns.
PATHS = {"refund": "Billing > Refund", "cancel": "Billing > Cancel", "delivery": "Delivery > Late", "login": "Account > Login", "praise": "Feedback > Praise"}


def messages(texts: list[str], label_sets: list[tuple[str, ...]], multi_label: bool) -> MessageSet:
    n = len(texts)
    return MessageSet(list(texts), [f"m{i}" for i in range(n)], list(label_sets), list(range(1, n + 1)), "planted.csv", multi_label)


def flip(label_sets: list[tuple[str, ...]], share: float, seed: int) -> tuple[list[tuple[str, ...]], set[int]]:
    """``share`` of the single-label sets changed to another label, and which."""
    rng = random.Random(seed)
    labels = sorted({labels[0] for labels in label_sets})
    flipped = set(rng.sample(range(len(label_sets)), round(share * len(label_sets))))
    noisy = [(rng.choice([x for x in labels if x != s[0]]),) if i in flipped else s for i, s in enumerate(label_sets)]
    return noisy, flipped


def found_at_k(check, planted: set[int]) -> float:
    """Precision of the top k, k the number of planted errors (so also their recall)."""
    return len(set(check.ranked(len(planted)).tolist()) & planted) / len(planted)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_flipped_hierarchical_labels_rank_first():
    rows = synthetic(300, seed=3)
    clean = [(PATHS[label],) for _, label in rows]
    noisy, flipped = flip(clean, 0.05, seed=1)
    check = check_labels(messages([t for t, _ in rows], noisy, False))
    assert found_at_k(check, flipped) >= 0.8  # chance: 0.05
    # what the flagged ones should be is their true label
    top = check.ranked(len(flipped))
    assert np.mean([check.suggested[i] == clean[i] for i in top if i in flipped]) >= 0.8
    assert sorted(check.rank.tolist()) == list(range(1, len(rows) + 1))
    assert check.n_flagged >= len(flipped) // 2 and check.warnings == []


def test_a_missed_label_of_multi_label_messages_is_found_and_named():
    first, second = synthetic(300, seed=5), synthetic(300, seed=105)
    texts, label_sets = [], []
    for i, ((a, la), (b, lb)) in enumerate(zip(first, second)):
        two = i % 2 and la != lb
        texts.append(a + " Also, " + b if two else a)
        label_sets.append(tuple(sorted({PATHS[la], PATHS[lb]} if two else {PATHS[la]})))
    rng = random.Random(2)
    pairs = [i for i, labels in enumerate(label_sets) if len(labels) == 2]
    dropped = {i: rng.choice(label_sets[i]) for i in rng.sample(pairs, 15)}
    noisy = [tuple(x for x in labels if x != dropped.get(i)) for i, labels in enumerate(label_sets)]
    check = check_labels(messages(texts, noisy, True), seed=1)
    assert found_at_k(check, set(dropped)) >= 0.8
    top = [i for i in check.ranked(len(dropped)) if i in dropped]
    assert np.mean([dropped[i] in check.missing[i] for i in top]) >= 0.8
    assert np.mean([check.suggested[i] == label_sets[i] for i in top]) >= 0.8
    assert all(check.extra[i] == () for i in top)


@pytest.mark.parametrize("multi_label", [False, True], ids=["spam-or-ham", "spam-or-nothing"])
def test_two_class_data(multi_label):
    rows = two_class(240, seed=8)
    clean = [(label,) for _, label in rows]
    noisy, flipped = flip(clean, 0.05, seed=4)
    if multi_label:  # one label column: the label, or its absence
        noisy = [labels if labels == ("spam",) else () for labels in noisy]
    check = check_labels(messages([t for t, _ in rows], noisy, multi_label))
    assert found_at_k(check, flipped) >= 0.8
    if multi_label:
        spam_dropped = [i for i in check.ranked(len(flipped)) if i in flipped and clean[i] == ("spam",)]
        assert spam_dropped and all(check.missing[i] == ("spam",) for i in spam_dropped)


def test_a_label_seen_once_is_warned_of_and_ranks_as_suspect():
    rows = synthetic(120, seed=9)
    label_sets = [(label,) for _, label in rows]
    label_sets[7] = ("refnud",)  # a typo
    check = check_labels(messages([t for t, _ in rows], label_sets, False), folds=3)
    assert check.rank[7] == 1 and check.suggested[7] == (rows[7][1],)
    assert len(check.warnings) == 1 and "'refnud' (1)" in check.warnings[0]


@pytest.fixture(scope="module")
def noisy_file(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, ...]], set[str]]:
    first, second = synthetic(200, seed=11), synthetic(200, seed=111)
    rows, truth, planted = [], {}, set()
    for i, ((a, la), (b, lb)) in enumerate(zip(first, second)):
        labels = sorted({PATHS[la], PATHS[lb]}) if i % 3 == 0 else [PATHS[la]]
        if i % 20 == 1:  # a flip
            labels, planted = [PATHS["praise" if la != "praise" else "login"]], planted | {f"id-{i}"}
        text = a + " Also, " + b if i % 3 == 0 else a
        rows.append({"id": f"id-{i}", "text": text, "labels": ";".join(labels)})
        truth[f"id-{i}"] = tuple(labels)
    return write_csv(tmp_path_factory.mktemp("check") / "train.csv", rows), truth, planted


def test_the_csv_reads_back_through_the_loader(noisy_file, tmp_path):
    train, given, planted = noisy_file
    out = tmp_path / "issues.csv"
    result = run_cli("check", "--train", train, "--id-column", "id", "--out", out, "--top", 15, "--quiet")
    assert result.returncode == 0, result.stderr
    with out.open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == ["id", "text", "given_labels", "suggested_labels", "score", "rank", "flagged", "missing_labels", "extra_labels"]
    back = load_messages(out, DataSpec(id_column="id", labels_column="given_labels"))
    assert len(back) == 15 and set(back.ids) <= set(given)
    assert all(labels == given[i] for i, labels in zip(back.ids, back.labels))
    suggested = load_messages(out, DataSpec(id_column="id", labels_column="suggested_labels"))
    assert suggested.ids == back.ids and len(set(back.ids) & planted) >= 0.8 * len(planted)
    assert "annotations look wrong" in result.stdout and back.ids[0] in result.stdout
    # without --top: everything cleanlab flags, most suspect first
    everything = tmp_path / "all.csv"
    assert run_cli("check", "--train", train, "--id-column", "id", "--out", everything, "--quiet").returncode == 0
    with everything.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    ranks = [int(row["rank"]) for row in written]
    assert written and ranks == sorted(ranks) and all(row["flagged"] == "true" for row in written)
    assert [float(row["score"]) for row in written] == sorted(float(row["score"]) for row in written)
    assert re.search(r"(\d+) of 200 annotations look wrong", result.stdout).group(1) == str(len(written))


def test_bad_input_is_refused_with_its_place(tmp_path):
    bad = write_csv(tmp_path / "bad.csv", [{"text": "refund please", "label": "refund"}, {"text": "  ", "label": "login"}])
    result = run_cli("check", "--train", bad, "--out", tmp_path / "issues.csv")
    assert result.returncode == 2
    assert "bad.csv" in result.stderr and "row 2" in result.stderr and "text is empty" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "issues.csv").exists()
    few = write_csv(tmp_path / "few.csv", [{"text": t, "label": label} for t, label in synthetic(4, seed=1)])
    result = run_cli("check", "--train", few, "--out", tmp_path / "issues.csv")
    assert result.returncode == 2 and "too few for 5-fold" in result.stderr and "--folds" in result.stderr
    nothing = write_csv(tmp_path / "nothing.csv", [{"text": t, "labels": ""} for t, _ in synthetic(20, seed=1)])
    result = run_cli("check", "--train", nothing, "--out", tmp_path / "issues.csv")
    assert result.returncode == 2 and "no annotated message has a label" in result.stderr and "nothing.csv" in result.stderr


def test_a_model_that_is_not_a_transformer_is_refused(tmp_path):
    rows = [{"text": t, "label": label} for t, label in synthetic(60, seed=2)]
    train = write_csv(tmp_path / "train.csv", rows)
    assert run_cli("baseline", "--train", train, "--out", tmp_path / "baseline", "--quiet").returncode == 0
    result = run_cli("check", "--train", train, "--model", tmp_path / "baseline", "--out", tmp_path / "issues.csv")
    assert result.returncode == 2 and "is a baseline model" in result.stderr and "--model tfidf" in result.stderr
    result = run_cli("check", "--train", train, "--model", tmp_path / "nowhere", "--out", tmp_path / "issues.csv")
    assert result.returncode == 2 and "no manifest.json" in result.stderr


def test_a_transformer_teachers_features_run(tiny_encoder_dir, tmp_path):
    pytest.importorskip("torch")
    from textdistill.data.labels import LabelSpace
    from textdistill.models.transformer import EncoderConfig, TransformerClassifier

    rows = synthetic(90, seed=6)
    teacher = TransformerClassifier(EncoderConfig(model=str(tiny_encoder_dir), max_length=24))
    teacher.label_space = LabelSpace.from_label_sets([(label,) for _, label in rows], False)
    teacher.build(str(tiny_encoder_dir), len(teacher.label_space))
    teacher.save(tmp_path / "teacher", config={}, training_data={})
    train = write_csv(tmp_path / "train.csv", [{"id": f"t{i}", "text": t, "labels": label} for i, (t, label) in enumerate(rows)])
    out = tmp_path / "issues.csv"
    result = run_cli("check", "--train", train, "--id-column", "id", "--model", tmp_path / "teacher", "--top", 5, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    back = load_messages(out, DataSpec(id_column="id", labels_column="given_labels"))
    assert len(back) == 5 and set(back.ids) <= {f"t{i}" for i in range(len(rows))}


def test_help_has_an_example():
    result = run_cli("check", "--help")
    assert result.returncode == 0 and "textdistill check --train train.csv --out issues.csv" in result.stdout
