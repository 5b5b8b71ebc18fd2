"""Multi-label decision thresholds tuned on validation data."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import logit

from textdistill.data.labels import LabelSpace
from textdistill.data.messages import DataSpec, load_messages
from textdistill.data.split import train_validation_split
from textdistill.errors import TextdistillError
from textdistill.models import TfidfBaseline, load_model
from textdistill.models.thresholds import MIN_OWN_POSITIVES, own_threshold_labels, tune_thresholds
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


def test_auto_gives_a_label_with_enough_positives_its_own_threshold_and_keeps_the_global_one_for_a_rare_label():
    n = 60
    y, proba = np.zeros((n, 3), dtype=int), np.zeros((n, 3))
    y[:10, 0], proba[:, 0] = 1, np.where(np.arange(n) < 10, 0.85, 0.6)  # 10 positives, separated above 0.6
    y[:30, 1], proba[:, 1] = 1, np.where(np.arange(n) < 30, 0.4, 0.1)  # 30 positives: most of the micro-F1
    y[:2, 2], proba[:, 2] = 1, np.where(np.arange(n) < 2, 0.08, 0.02)  # 2 positives, separated above 0.02
    global_t = tune_thresholds(y, proba, "global")[0]
    assert 0.1 < global_t <= 0.4  # label 1's best, which lets every one of label 0's negatives through
    auto = tune_thresholds(y, proba, "auto")
    assert 0.6 < auto[0] <= 0.85 and 0.1 < auto[1] <= 0.4  # their own
    assert y[:, 2].sum() < MIN_OWN_POSITIVES and auto[2] == global_t  # too few to tune on
    assert 0.02 < tune_thresholds(y, proba, "per_label")[2] <= 0.08  # per_label tunes it anyway
    assert own_threshold_labels(y, "auto").tolist() == [True, True, False]
    assert own_threshold_labels(y, "per_label").tolist() == [True, True, True]
    assert own_threshold_labels(y, "global").tolist() == [False, False, False]
    assert own_threshold_labels(y, "auto", min_positives=2).tolist() == [True, True, True]
    assert tune_thresholds(y, proba, "auto", min_positives=2)[2] == tune_thresholds(y, proba, "per_label")[2]


def test_an_unknown_threshold_mode_names_the_modes():
    with pytest.raises(TextdistillError, match="auto, global, per_label"):
        tune_thresholds(np.eye(2), np.eye(2), "per-label")


def test_a_parents_threshold_is_tuned_for_the_messages_its_child_leaves_to_it():
    space = LabelSpace(("Shipping", "Shipping > Damaged"), True, " > ")
    truth = [("Shipping > Damaged",)] * 6 + [("Shipping",)] * 6 + [()] * 6
    # the last six: Damaged at 0.7, below its positives (0.9) and above Shipping's own 0.6 of the middle six
    proba = np.array([[0.1, 0.9]] * 6 + [[0.6, 0.1]] * 6 + [[0.2, 0.7]] * 6)
    t = tune_thresholds(space.encode(truth), proba, "per_label", space.parent_indices())
    assert 0.2 < t[0] <= 0.6 and 0.7 < t[1] <= 0.9
    # Damaged brings Shipping to the first six; Shipping's own score picks out the middle six, and
    # the last six's Damaged score, short of Damaged's threshold, is no evidence for Shipping
    assert space.predict(proba, t) == [space.closure(labels) for labels in truth]


def test_auto_thresholds_and_the_labels_that_got_their_own_are_saved_and_reloaded(sample_data, tmp_path):
    spec = DataSpec(text_columns=("subject", "body"), id_column="id")
    train, val = train_validation_split(load_messages(sample_data.train, spec), 0.2, seed=0)
    model = TfidfBaseline().fit(train.texts, train.labels, multi_label=True, hierarchy_sep=" > ", validation=(val.texts, val.labels), threshold_mode="auto")
    positives = model.label_space.encode(val.labels).sum(axis=0)
    expected = [label for label, n in zip(model.label_space.labels, positives) if n >= MIN_OWN_POSITIVES]
    assert model.threshold_mode == "auto" and model.own_thresholds == expected
    assert 0 < len(expected) < len(model.label_space)  # the sample has frequent and rare labels
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["threshold_mode"] == "auto" and manifest["own_thresholds"] == expected
    reloaded = load_model(tmp_path / "m")
    assert reloaded.own_thresholds == expected
    np.testing.assert_array_equal(reloaded.thresholds, model.thresholds)


def test_an_unknown_threshold_mode_is_refused_before_training():
    model = TfidfBaseline()
    with pytest.raises(TextdistillError, match="threshold mode 'best'"):
        model.fit(["a", "b"], [("x",), ("y",)], multi_label=True, threshold_mode="best")
    assert model.label_space is None  # nothing trained


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
