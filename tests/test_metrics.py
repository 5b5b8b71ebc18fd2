"""Quality metrics against values computed by hand."""

import numpy as np
import pytest

from textdistill.data.labels import LabelSpace
from textdistill.evaluate.metrics import quality_metrics


def test_single_label_metrics_by_hand():
    space = LabelSpace(("a", "b", "c"), False)
    true = [("a",), ("a",), ("b",), ("c",)]
    pred = [("a",), ("b",), ("b",), ("c",)]
    proba = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])
    m = quality_metrics(space, true, pred, proba)
    assert m["accuracy"] == 0.75
    assert m["micro_f1"] == pytest.approx(0.75)
    # per label: a P=1 R=.5 F=2/3; b P=.5 R=1 F=2/3; c P=R=F=1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    per = {row["label"]: row for row in m["per_label"]}
    assert per["a"]["precision"] == 1.0 and per["a"]["recall"] == 0.5 and per["a"]["support"] == 2
    # AP of a: scores .8 (pos), .3 (pos), .2, .1 -> both positives ranked first -> 1.0
    assert per["a"]["average_precision"] == pytest.approx(1.0)
    assert m["confused_pairs"] == [{"true": "a", "predicted": "b", "count": 1}]
    assert m["by_level"] == [] and m["samples_f1"] is None


def test_multi_label_hierarchy_metrics_by_hand():
    space = LabelSpace.from_label_sets([("A > x",), ("A > y",), ("B > z",)], True)
    true = [("A > x",), ("B > z",), ()]
    pred = [("A", "A > y"), ("B", "B > z"), ("A", "A > x")]
    proba = np.random.default_rng(0).random((3, len(space)))
    m = quality_metrics(space, true, pred, proba)
    assert m["accuracy"] is None
    # closed sets: true {A, A>x}, {B, B>z}, {}; pred {A, A>y}, {B, B>z}, {A, A>x}
    # tp = A, B, B>z = 3; fp = A>y, A, A>x = 3; fn = A>x = 1 -> P = .5, R = .75
    assert m["micro_precision"] == pytest.approx(0.5)
    assert m["micro_recall"] == pytest.approx(0.75)
    level1 = m["by_level"][0]
    # level 1: true {A}, {B}, {}; pred {A}, {B}, {A}: tp 2, fp 1, fn 0
    assert level1["level"] == 1 and level1["micro_f1"] == pytest.approx(0.8)
    assert {"true": "A > x", "predicted": "A > y", "count": 1} in m["confused_pairs"]
    assert all(pair["true"] != "A" for pair in m["confused_pairs"])  # ancestors are not "confused"


def test_single_label_hierarchy_level_accuracy():
    space = LabelSpace(("A > x", "A > y", "B > z"), False, " > ")
    true = [("A > x",), ("A > y",), ("B > z",), ("B > z",)]
    pred = [("A > y",), ("A > y",), ("B > z",), ("A > x",)]
    m = quality_metrics(space, true, pred, np.full((4, 3), 1 / 3))
    assert m["accuracy"] == 0.5
    assert [row["accuracy"] for row in m["by_level"]] == [0.75, 0.5]


def test_levels_of_closed_multi_label_sets_and_parent_only_predictions():
    space = LabelSpace.from_label_sets([("A > x",), ("A > y",), ("B > z",)], True)
    true = [("A > x",), ("B > z",)]
    pred = [("A", "A > x"), ("B",)]  # the second stops at the right parent
    m = quality_metrics(space, true, pred, np.zeros((2, len(space))))
    level1, level2 = m["by_level"]
    assert level1["micro_f1"] == 1.0
    # level 2: true {A>x}, {B>z}; pred {A>x}, {}: tp 1, fn 1 -> F1 2/3 (parents are not level-2 labels)
    assert level2["micro_f1"] == pytest.approx(2 / 3)
    assert m["confused_pairs"] == []
