"""Multi-label decision thresholds tuned on validation data."""

import numpy as np

from textdistill.models.thresholds import tune_thresholds


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
