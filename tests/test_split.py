"""Seeded stratified train/validation splits."""

from collections import Counter

import pytest

from textdistill.data.messages import MessageSet
from textdistill.data.split import train_validation_split
from textdistill.errors import DataError


def make_set(label_sets, multi_label):
    n = len(label_sets)
    return MessageSet([f"t{i}" for i in range(n)], [str(i) for i in range(n)], list(label_sets), list(range(1, n + 1)), "mem", multi_label)


def test_single_label_split_is_stratified_seeded_and_disjoint():
    labels = [("a",)] * 60 + [("b",)] * 30 + [("c",)] * 10 + [("rare",)]
    messages = make_set(labels, False)
    train, val = train_validation_split(messages, 0.2, seed=3)
    assert len(val) == 20 and len(train) == 81
    assert set(train.ids).isdisjoint(val.ids)
    assert Counter(l[0] for l in val.labels) == {"a": 12, "b": 6, "c": 2}
    assert "rare" in {l[0] for l in train.labels}  # a single example stays in train
    again, _ = train_validation_split(messages, 0.2, seed=3)
    other, _ = train_validation_split(messages, 0.2, seed=4)
    assert again.ids == train.ids and other.ids != train.ids


def test_multi_label_split_reaches_rare_labels_on_both_sides():
    labels = [("x", "y")] * 40 + [("x",)] * 40 + [("z",)] * 10 + [()] * 10
    train, val = train_validation_split(make_set(labels, True), 0.2, seed=0)
    val_counts = Counter(label for labels in val.labels for label in labels)
    assert val_counts["z"] == 2 and val_counts["y"] == 8
    assert len(train) + len(val) == 100


def test_too_few_messages_for_a_split():
    with pytest.raises(DataError, match="too few"):
        train_validation_split(make_set([("a",), ("b",)], False), 0.1)
