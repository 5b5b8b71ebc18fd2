"""The TF-IDF baseline: learns, saves without pickles, reloads exactly."""

import json

import numpy as np
import pytest

from textdistill.data.messages import DataSpec, load_messages
from textdistill.data.split import train_validation_split
from textdistill.errors import TextdistillError
from textdistill.models import TfidfBaseline, load_model

TEXTS = [
    "please refund my money", "i want a refund for the order", "refund the charge please", "money back for this order",
    "my parcel has not arrived", "the delivery is late again", "where is my parcel", "courier never delivered the box",
    "reset my password", "cannot log in to my account", "forgot my password help", "login fails with my password",
]
LABELS = [("refund",)] * 4 + [("delivery",)] * 4 + [("login",)] * 4


def test_single_label_learns_and_predicts_labels():
    model = TfidfBaseline().fit(TEXTS, LABELS, multi_label=False)
    assert model.predict(["i would like a refund", "my password does not work"]) == ["refund", "login"]
    proba = model.predict_proba(["parcel late"])
    assert proba.shape == (1, 3) and np.isclose(proba.sum(), 1.0)
    assert model.n_params == model._weights.shape[0] * 3 + 3


def test_single_class_is_refused():
    with pytest.raises(TextdistillError, match="single class"):
        TfidfBaseline().fit(TEXTS[:4], LABELS[:4], multi_label=False)


def test_save_is_pickle_free_and_reload_is_exact(tmp_path):
    model = TfidfBaseline().fit(TEXTS, LABELS, multi_label=False)
    model.save(tmp_path / "m", config={"note": "x"}, training_data={"sha256": "abc"})
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["manifest.json", "vocabulary.json", "weights.safetensors"]
    for path in (tmp_path / "m").iterdir():
        assert not path.read_bytes().startswith(b"\x80")  # no pickle protocol header
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["kind"] == "baseline" and manifest["labels"] == ["delivery", "login", "refund"]
    assert manifest["training_data"] == {"sha256": "abc"} and manifest["config"]["note"] == "x"
    assert manifest["n_params"] == model.n_params and "numpy" in manifest["versions"]
    reloaded = load_model(tmp_path / "m")
    probe = ["refund my parcel password", "totally unrelated words"]
    np.testing.assert_array_equal(reloaded.predict_proba(probe), model.predict_proba(probe))


def test_multi_label_hierarchy_thresholds_are_tuned_and_stored(sample_data, tmp_path):
    spec = DataSpec(text_columns=("subject", "body"), id_column="id")
    train, val = train_validation_split(load_messages(sample_data.train, spec), 0.2, seed=0)
    model = TfidfBaseline().fit(
        train.texts, train.labels, multi_label=True, hierarchy_sep=" > ", validation=(val.texts, val.labels), threshold_mode="per_label"
    )
    assert model.label_space.multi_label and "Billing" in model.label_space
    assert model.thresholds.shape == (len(model.label_space),)
    assert len(set(np.round(model.thresholds, 2))) > 1  # per-label thresholds really differ
    predictions = model.predict(val.texts[:20])
    # a predicted child always comes with its parent
    for labels in predictions:
        for label in labels:
            if " > " in label:
                assert label.split(" > ")[0] in labels
    model.save(tmp_path / "ml")
    reloaded = load_model(tmp_path / "ml")
    np.testing.assert_array_equal(reloaded.thresholds, model.thresholds)
    assert reloaded.predict(val.texts[:20]) == predictions


def test_single_label_parent_confidence_sums_children():
    labels = [("A > x",)] * 4 + [("A > y",)] * 4 + [("B > z",)] * 4
    model = TfidfBaseline().fit(TEXTS, labels, multi_label=False, hierarchy_sep=" > ")
    row = model.predict_proba(["refund"])[0]
    confidences = model.label_confidences(row)
    assert confidences["A"] == pytest.approx(confidences["A > x"] + confidences["A > y"])
    assert confidences["B"] == pytest.approx(confidences["B > z"])
