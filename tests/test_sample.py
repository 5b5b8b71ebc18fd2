"""The built-in sample dataset: deterministic, well-formed, and as hard as promised."""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from textdistill.data.sample import SampleDataset, write_sample_dataset

FILES = ("train", "test", "unannotated", "validation")


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def label_sets(path: Path) -> list[list[str]]:
    return [row["labels"].split(";") for row in read_rows(path)[1]]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleDataset:
    return write_sample_dataset(tmp_path_factory.mktemp("sample"))


def test_same_seed_same_files_and_no_global_random_state(tmp_path: Path) -> None:
    random.seed(1)
    first = write_sample_dataset(tmp_path / "a", seed=7, n_train=200, n_test=50, n_unannotated=50)
    random.seed(2)
    second = write_sample_dataset(tmp_path / "b", seed=7, n_train=200, n_test=50, n_unannotated=50)
    for name in (*FILES, "label_errors"):
        assert getattr(first, name).read_bytes() == getattr(second, name).read_bytes()
    assert first.labels == second.labels


def test_validation_size_leaves_the_other_files_unchanged(tmp_path: Path) -> None:
    small = write_sample_dataset(tmp_path / "a", seed=3, n_train=100, n_test=40, n_unannotated=30, n_validation=10)
    large = write_sample_dataset(tmp_path / "b", seed=3, n_train=100, n_test=40, n_unannotated=30, n_validation=60)
    for name in ("train", "test", "unannotated"):
        assert getattr(small, name).read_bytes() == getattr(large, name).read_bytes(), name
    assert len(read_rows(large.validation)[1]) == 60


def test_planted_label_errors_are_listed_and_change_nothing_but_those_labels(tmp_path: Path) -> None:
    clean = write_sample_dataset(tmp_path / "a", seed=3, n_train=300, n_test=20, n_unannotated=20, n_label_errors=0)
    noisy = write_sample_dataset(tmp_path / "b", seed=3, n_train=300, n_test=20, n_unannotated=20, n_label_errors=9)
    for name in ("test", "unannotated", "validation"):
        assert getattr(clean, name).read_bytes() == getattr(noisy, name).read_bytes(), name
    before = {row["id"]: row for row in read_rows(clean.train)[1]}
    after = {row["id"]: row for row in read_rows(noisy.train)[1]}
    planted = {row["id"]: row for row in read_rows(noisy.label_errors)[1]}
    assert len(planted) == 9 and read_rows(clean.label_errors)[1] == []
    default = write_sample_dataset(tmp_path / "c", seed=3, n_train=300, n_test=20, n_unannotated=20)
    assert len(read_rows(default.label_errors)[1]) == 6  # 2 % of the training file
    for message_id, row in after.items():
        assert {k: v for k, v in row.items() if k != "labels"} == {k: v for k, v in before[message_id].items() if k != "labels"}
        if message_id in planted:
            given, true = planted[message_id]["given"], planted[message_id]["true"]
            assert row["labels"] == given and before[message_id]["labels"] == true
            assert given.split(" > ")[0] != true.split(" > ")[0]  # wrong at the top level, not a near miss
        else:
            assert row["labels"] == before[message_id]["labels"]


def test_other_seed_other_messages(tmp_path: Path) -> None:
    a = write_sample_dataset(tmp_path / "a", seed=0, n_train=200, n_test=50, n_unannotated=50)
    b = write_sample_dataset(tmp_path / "b", seed=1, n_train=200, n_test=50, n_unannotated=50)
    bodies_a = {row["body"] for row in read_rows(a.train)[1]}
    bodies_b = {row["body"] for row in read_rows(b.train)[1]}
    assert len(bodies_a & bodies_b) < 10


def test_files_columns_and_sizes(sample: SampleDataset) -> None:
    expected = {
        "train": (["id", "subject", "body", "labels"], 1200),
        "test": (["id", "subject", "body", "labels"], 400),
        "unannotated": (["id", "subject", "body"], 800),
        "validation": (["id", "subject", "body", "labels"], 200),
    }
    for name, (columns, n) in expected.items():
        path = getattr(sample, name)
        assert path.name == f"{name}.csv"
        header, rows = read_rows(path)
        assert header == columns
        assert len(rows) == n
        assert all(row["body"].strip() for row in rows)


def test_custom_sizes(tmp_path: Path) -> None:
    ds = write_sample_dataset(tmp_path, n_train=30, n_test=10, n_unannotated=5, n_validation=7)
    assert [len(read_rows(getattr(ds, name))[1]) for name in FILES] == [30, 10, 5, 7]


def test_ids_unique_across_files(sample: SampleDataset) -> None:
    ids = [row["id"] for name in FILES for row in read_rows(getattr(sample, name))[1]]
    assert len(ids) == len(set(ids)) == 2600
    assert all(re.fullmatch(r"msg-\d{6}", i) for i in ids)


def test_label_hierarchy(sample: SampleDataset) -> None:
    assert len(sample.labels) >= 12
    assert len(set(sample.labels)) == len(sample.labels)
    paths = [label.split(" > ") for label in sample.labels]
    assert all(len(path) == 2 and all(part and part == part.strip() for part in path) for path in paths)
    assert len({parent for parent, _ in paths}) >= 4
    assert not any(";" in label for label in sample.labels)


def test_files_use_exactly_the_declared_labels(sample: SampleDataset) -> None:
    for name in ("train", "test"):
        sets = label_sets(getattr(sample, name))
        assert {label for labels in sets for label in labels} == set(sample.labels)
        assert all(len(labels) == len(set(labels)) for labels in sets)


def test_multi_label_share(sample: SampleDataset) -> None:
    for name in ("train", "test"):
        sets = label_sets(getattr(sample, name))
        share = sum(len(labels) > 1 for labels in sets) / len(sets)
        assert 0.05 <= share <= 0.25, (name, share)


def test_every_label_has_enough_examples(sample: SampleDataset) -> None:
    for name, minimum in (("train", 30), ("test", 8)):
        counts = Counter(label for labels in label_sets(getattr(sample, name)) for label in labels)
        assert min(counts[label] for label in sample.labels) >= minimum, (name, counts)


def test_unannotated_has_no_labels(sample: SampleDataset) -> None:
    header, rows = read_rows(sample.unannotated)
    assert "labels" not in header
    assert all(set(row) == {"id", "subject", "body"} for row in rows)


def test_emails_carry_quotes_and_signatures(sample: SampleDataset) -> None:
    bodies = [row["body"] for row in read_rows(sample.train)[1]]
    kinds = {
        "gmail quote": lambda b: re.search(r"^On .*\d.*(\n.*)? wrote:$", b, re.MULTILINE) and "\n> " in b,
        "original message": lambda b: "-----Original Message-----" in b,
        "outlook header": lambda b: re.search(r"^From: .*\nSent: .*\nTo: .*\nSubject: ", b, re.MULTILINE),
        "signature delimiter": lambda b: "\n-- \n" in b,
        "phone footer": lambda b: re.search(r"^(Sent from|Get Outlook)", b, re.MULTILINE),
    }
    for kind, present in kinds.items():
        assert any(present(b) for b in bodies), kind
    share = sum(any(present(b) for present in kinds.values()) for b in bodies) / len(bodies)
    assert 0.1 <= share <= 0.35


def test_texts_are_varied(sample: SampleDataset) -> None:
    rows = read_rows(sample.train)[1]
    bodies = [row["body"] for row in rows]
    assert len(set(bodies)) > 0.95 * len(bodies)  # only short chats ("cant log in") repeat
    assert 0 < sum(not row["subject"] for row in rows) < 0.2 * len(rows)
    assert any(len(b) < 60 for b in bodies) and any(len(b) > 600 for b in bodies)
    assert any(b == b.lower() and len(b) > 150 for b in bodies)


def test_tfidf_baseline_is_good_but_not_perfect(sample: SampleDataset) -> None:
    def load(path: Path) -> tuple[list[str], list[list[str]]]:
        rows = read_rows(path)[1]
        return [row["subject"] + "\n\n" + row["body"] for row in rows], [row["labels"].split(";") for row in rows]

    (train_texts, train_labels), (test_texts, test_labels) = load(sample.train), load(sample.test)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    binarizer = MultiLabelBinarizer()
    model = OneVsRestClassifier(LogisticRegression(C=10, solver="liblinear"))
    model.fit(vectorizer.fit_transform(train_texts), binarizer.fit_transform(train_labels))
    proba = model.predict_proba(vectorizer.transform(test_texts))
    predicted = (proba >= 0.5).astype(int)
    predicted[np.arange(len(proba)), proba.argmax(axis=1)] = 1
    micro_f1 = f1_score(binarizer.transform(test_labels), predicted, average="micro")
    assert 0.8 <= micro_f1 <= 0.96


def _slot_free_phrasings(intents, field: str) -> set[str]:
    return {text for intent in intents.values() for text in getattr(intent, field) if "{" not in text}


def test_annotated_messages_miss_some_phrasings_that_the_others_use(sample: SampleDataset) -> None:
    # The annotated file uses only the first ANNOTATED_PHRASINGS of each intent's own wording,
    # so a model must generalise to the rest, which unannotated and test messages use.
    from textdistill.data.sample import _SYNONYM_PATTERN, ANNOTATED_INTENTS, INTENTS

    held_out = _slot_free_phrasings(INTENTS, "situations") - _slot_free_phrasings(ANNOTATED_INTENTS, "situations")
    assert len(held_out) >= 16
    held_out = {phrase for phrase in held_out if not _SYNONYM_PATTERN.search(phrase)}  # kept word for word
    assert len(held_out) >= 5
    held_out = {phrase.lower() for phrase in held_out}
    texts = {name: " ".join(r["subject"] + " " + r["body"] for r in read_rows(getattr(sample, name))[1]).lower() for name in FILES}
    assert not [phrase for phrase in held_out if phrase in texts["train"]]
    for name in ("test", "unannotated", "validation"):
        assert sum(phrase in texts[name] for phrase in held_out) >= 0.5 * len(held_out), name


def test_forwarded_threads_are_about_another_intent_and_clean_email_removes_them(sample: SampleDataset) -> None:
    from textdistill.data.email import clean_email

    rows = read_rows(sample.train)[1]
    forwarded = [row for row in rows if re.search(r"^(----- Forwarded by .* -----|-+ Forwarded message -+)$", row["body"], re.MULTILINE)]
    assert 0.02 * len(rows) <= len(forwarded) <= 0.12 * len(rows)
    assert any("/" in row["body"] and "cc: " in row["body"] for row in forwarded)  # Lotus Notes style
    assert any("\nDate: " in row["body"] for row in forwarded)  # Gmail style
    for row in forwarded:
        cleaned = clean_email(row["body"])
        assert "Forwarded" not in cleaned and "Subject:" not in cleaned
        assert len(cleaned) < len(row["body"]) / 1.3


def test_later_messages_use_words_the_annotated_ones_never_do(sample: SampleDataset) -> None:
    from textdistill.data.sample import SYNONYMS

    words = {name: Counter(re.findall(r"[a-z]+", " ".join(r["subject"] + " " + r["body"] for r in read_rows(getattr(sample, name))[1]).lower())) for name in FILES}
    # synonyms whose every word is absent from the annotated messages: only later traffic has them
    new_words = {w for synonym in SYNONYMS.values() for w in re.findall(r"[a-z]+", synonym) if not words["train"][w]}
    assert len(new_words) >= 15
    for name in ("test", "unannotated", "validation"):
        assert sum(bool(words[name][w]) for w in new_words) >= 0.7 * len(new_words), name
