"""Label spaces: single, multi-label and hierarchical."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textdistill.data.labels import LabelSpace, ancestors, normalise, truncate


def test_paths_ancestors_and_truncation():
    assert ancestors("A > B > C", " > ") == ["A", "A > B"]
    assert truncate("A > B > C", 2, " > ") == "A > B"
    assert truncate("A", 3, " > ") == "A"
    assert normalise(" A>B >  C ", " > ") == "A > B > C"


def test_multi_label_space_adds_ancestors_and_encodes_closure():
    space = LabelSpace.from_label_sets([("Billing > Refund",), ("Delivery > Late", "Billing > Invoice")], True)
    assert space.labels == ("Billing", "Billing > Invoice", "Billing > Refund", "Delivery", "Delivery > Late")
    y = space.encode([("Billing > Refund",)])
    assert y.tolist() == [[1, 0, 1, 0, 0]]
    assert space.decode(np.array([[0, 0, 0, 0, 1]])) == [("Delivery", "Delivery > Late")]
    assert space.depth == 2


def test_single_label_hierarchy_keeps_leaf_classes():
    space = LabelSpace.from_label_sets([("A > x",), ("A > y",), ("B > z",)], False)
    assert space.labels == ("A > x", "A > y", "B > z")
    assert space.hierarchical and not space.multi_label
    assert space.encode_single([("B > z",), ("A > x",)]).tolist() == [2, 0]
    assert space.at_level(["A > y"], 1) == ("A",)


def test_flat_labels_are_not_hierarchical_and_round_trip_json():
    space = LabelSpace.from_label_sets([("b",), ("a",)], False)
    assert not space.hierarchical
    assert LabelSpace.from_json(space.to_json()) == space


# -- predictions consistent with the hierarchy --------------------------------------------------
SHIPPING = LabelSpace(("Billing", "Shipping", "Shipping > Damaged", "Shipping > Damaged > Box", "Shipping > Late"), True, " > ")


def test_a_child_scoring_above_its_parent_is_predicted_with_it_and_the_parent_scores_at_least_as_high():
    #                   Billing Shipping Damaged  Box    Late
    proba = np.array([[0.10, 0.990, 0.992, 0.30, 0.20]])
    thresholds = np.array([0.5, 0.995, 0.5, 0.5, 0.5])  # Shipping's own 0.990 is below its threshold
    assert SHIPPING.predict(proba, thresholds) == [("Shipping", "Shipping > Damaged")]
    scores = SHIPPING.confidences(proba[0])
    assert scores["Shipping"] == scores["Shipping > Damaged"] == 0.992
    assert scores["Shipping > Damaged > Box"] == 0.30 and scores["Billing"] == 0.10


def test_a_grandchilds_confidence_reaches_its_grandparent_but_predicts_it_only_when_the_grandchild_is_predicted():
    proba = np.array([[0.0, 0.1, 0.2, 0.7, 0.0]])
    assert SHIPPING.consistent(proba).tolist() == [[0.0, 0.7, 0.7, 0.7, 0.0]]
    # Box (0.7) falls short of its own threshold (0.9): no evidence for Shipping, whose own score is 0.1
    assert SHIPPING.predict(proba, np.array([0.5, 0.6, 0.9, 0.9, 0.5])) == [()]
    # Box predicted: both its ancestors come with it, whatever their own scores and thresholds
    assert SHIPPING.predict(proba, np.array([0.5, 0.6, 0.9, 0.6, 0.5])) == [("Shipping", "Shipping > Damaged", "Shipping > Damaged > Box")]


def test_a_parent_alone_is_predicted_on_its_own_score():
    proba = np.array([[0.0, 0.8, 0.3, 0.1, 0.2]])
    assert SHIPPING.predict(proba, np.array([0.5, 0.7, 0.5, 0.5, 0.5])) == [("Shipping",)]
    assert SHIPPING.predict(proba, np.array([0.5, 0.9, 0.5, 0.5, 0.5])) == [()]


def test_parent_indices_point_to_the_nearest_ancestor_column():
    assert SHIPPING.parent_indices().tolist() == [-1, -1, 1, 2, 1]
    assert LabelSpace(("A", "A > x > y"), True, " > ").parent_indices().tolist() == [-1, 0]  # A > x is not a column
    assert LabelSpace(("A > x", "A > y", "B"), False, " > ").parent_indices().tolist() == [-1, -1, -1]  # single-label: no parent columns


def test_single_label_and_flat_probabilities_are_left_as_they_are():
    single = LabelSpace(("A > x", "A > y", "B"), False, " > ")
    proba = np.array([[0.5, 0.2, 0.3]])
    assert single.predict(proba, None) == [("A > x",)] and single.consistent(proba) is proba
    assert single.confidences(proba[0]) == pytest.approx({"A > x": 0.5, "A > y": 0.2, "B": 0.3, "A": 0.7})
    flat = LabelSpace(("a", "b"), True)
    assert flat.predict(np.array([[0.7, 0.2]]), np.array([0.5, 0.1])) == [("a", "b")]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.floats(0, 1), min_size=5, max_size=5), min_size=1, max_size=6),
    st.lists(st.floats(0.01, 0.99), min_size=5, max_size=5),
)
def test_predicted_sets_and_confidences_agree_with_the_hierarchy_and_the_thresholds(rows, thresholds):
    proba, thresholds = np.array(rows), np.array(thresholds)
    for labels, row in zip(SHIPPING.predict(proba, thresholds), proba):
        scores = SHIPPING.confidences(row)
        assert set(SHIPPING.closure(labels)) == set(labels)  # a child implies its parents
        for label in SHIPPING.labels:
            own = row[SHIPPING.index(label)] >= thresholds[SHIPPING.index(label)]
            for parent in ancestors(label, " > "):
                assert scores[parent] >= scores[label]
            if label not in labels:
                assert not own  # left out: its own score is below its threshold
            elif not any(other.startswith(label + " > ") for other in labels):
                assert own  # predicted without a predicted descendant: there by its own score
