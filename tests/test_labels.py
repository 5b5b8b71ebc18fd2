"""Label spaces: single, multi-label and hierarchical."""

import numpy as np

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
