"""Multi-label decision thresholds tuned on validation data."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logit

from textdistill.data.labels import LabelSpace
from textdistill.models import TfidfBaseline
from textdistill.models.thresholds import tune_thresholds
from textdistill.predict import label_sets_from_logits
from textdistill.serve.predictor import Predictor


def test_global_threshold_maximises_micro_f1():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    proba = np.array([[0.3, 0.1], [0.35, 0.2], [0.1, 0.32], [0.2, 0.25]])
    # any threshold in (0.25, 0.30] separates the positives perfectly
    t = tune_thresholds(y, proba, "global")
    assert np.all(t == t[0]) and 0.25 < t[0] <= 0.30


def test_per_label_thresholds_differ_and_unseen_labels_fall_back_to_global():
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0]])
    proba = np.array([[0.8, 0.10, 0.9], [0.6, 0.15, 0.1], [0.1, 0.05, 0.2], [0.9, 0.2, 0.3]])
    t = tune_thresholds(y, proba, "per_label")
    assert 0.6 < t[0] <= 0.8  # label 0: positives at 0.8 and 0.9, negative at 0.6
    assert 0.05 < t[1] <= 0.15  # label 1: positives at 0.15 and 0.2
    assert t[2] == tune_thresholds(y, proba, "global")[0]


# -- every prediction path applies them alike, consistently with the hierarchy -----------------
class FixedProbabilities(TfidfBaseline):
    """A multi-label hierarchical model whose probabilities are given: a child above its parent."""

    def __init__(self, proba):
        super().__init__()
        self.label_space = LabelSpace(("Billing", "Shipping", "Shipping > Damaged"), True, " > ")
        self.thresholds = np.array([0.5, 0.995, 0.5])
        self.proba = np.asarray(proba)

    def predict_proba(self, texts):
        return self.proba[: len(texts)]

    def decision_function(self, texts):
        return logit(self.predict_proba(texts))


def test_a_child_above_its_parent_comes_with_it_from_every_prediction_path():
    model = FixedProbabilities([[0.2, 0.990, 0.992], [0.1, 0.3, 0.2]])
    texts = ["box arrived crushed", "hello"]
    expected = [("Shipping", "Shipping > Damaged"), ()]
    assert model.predict_label_sets(texts) == expected
    assert model.predict(texts) == [list(labels) for labels in expected]
    assert model.label_confidences(model.proba[0]) == pytest.approx({"Billing": 0.2, "Shipping": 0.992, "Shipping > Damaged": 0.992})
    manifest = SimpleNamespace(label_space=model.label_space, thresholds=model.thresholds)  # what `predict` reads
    assert label_sets_from_logits(model.decision_function(texts), manifest) == expected
    served = Predictor(model)(texts)
    assert [p.labels for p in served] == expected
    assert served[0].scores["Shipping"] >= served[0].scores["Shipping > Damaged"]


def test_per_label_thresholds_are_tuned_on_the_probabilities_they_are_applied_to():
    # Shipping's own probability does not separate its positives (rows 1, 2); raised to its child's, it does
    model = FixedProbabilities([[0.0, 0.1, 0.9], [0.0, 0.2, 0.8], [0.0, 0.3, 0.1], [0.0, 0.4, 0.2]])
    texts, truth = ["a", "b", "c", "d"], [("Shipping > Damaged",), ("Shipping > Damaged",), ("Billing",), ("Billing",)]
    model.tune_thresholds((texts, truth), "per_label")
    assert 0.4 < model.thresholds[1] <= 0.8
    assert model.predict_label_sets(texts)[:2] == [("Shipping", "Shipping > Damaged")] * 2
    assert not any("Shipping" in labels for labels in model.predict_label_sets(texts)[2:])
