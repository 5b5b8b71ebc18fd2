"""textdistill drift: label shift, coverage and the embedding test against a reference, and the command."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from cli_in_process import run_cli

from synthetic import INTENTS, OPENERS, THINGS, two_class
from textdistill.data.messages import DataSpec, MessageSet
from textdistill.errors import TextdistillError
from textdistill.models.baseline import TfidfBaseline, BaselineConfig
from textdistill.refine.drift import holm, measure_drift, mmd_permutation_test
from textdistill.training.recipes import train_baseline
from textdistill.transfer import label_messages

UNIFORM = dict.fromkeys(INTENTS, 1.0)
# praise and cancel gone, refund and login twice as common (20 % -> 40 %): delivery keeps its 20 %
SHIFTED = {"refund": 2.0, "delivery": 1.0, "login": 2.0, "cancel": 0.0, "praise": 0.0}


def intents(n: int, seed: int, weights: dict[str, float], extra: str = "") -> list[tuple[str, tuple[str, ...]]]:
    """``n`` intent messages drawn with ``weights`` per intent; ``extra`` appended to every text."""
    rng = random.Random(seed)
    names = sorted(weights)
    rows = []
    for _ in range(n):
        label = rng.choices(names, [weights[name] for name in names])[0]
        text = rng.choice(INTENTS[label]).format(n=rng.randint(1000, 99999), thing=rng.choice(THINGS))
        rows.append((rng.choice(OPENERS) + text + rng.choice(["", ".", "!", " Thanks."]) + extra, (label,)))
    return rows


def two_requests(n: int, seed: int, weights: dict[str, float]) -> list[tuple[str, tuple[str, ...]]]:
    """Multi-label messages: every second one asks two things."""
    first, second = intents(n, seed, weights), intents(n, seed + 1000, weights)
    return [(a, la) if i % 2 else (f"{a} Also, {b}", tuple(sorted({*la, *lb}))) for i, ((a, la), (b, lb)) in enumerate(zip(first, second))]


def messages(rows, multi_label: bool | None = None, source: str = "synthetic") -> MessageSet:
    n = len(rows)
    labels = [labels if isinstance(labels, tuple) else (labels,) for _, labels in rows]
    return MessageSet([t for t, _ in rows], [f"m{i}" for i in range(n)], labels, list(range(1, n + 1)), source, multi_label)


def unannotated(rows, source: str = "current.csv") -> MessageSet:
    texts = [t for t, _ in rows]
    return MessageSet(texts, [f"c{i}" for i in range(len(texts))], [None] * len(texts), list(range(1, len(texts) + 1)), source, None)


def write_csv(path: Path, rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        writer.writerows((f"r{i}", text) for i, (text, _) in enumerate(rows))
    return path


def baseline(directory: Path, train_rows, validation_rows, multi_label: bool = False) -> Path:
    train_baseline(BaselineConfig(), messages(train_rows, multi_label), messages(validation_rows, multi_label), directory, spec=DataSpec())
    return directory


@pytest.fixture(scope="module")
def intent_model(tmp_path_factory) -> Path:
    return baseline(tmp_path_factory.mktemp("intents"), intents(600, 0, UNIFORM), intents(150, 1, UNIFORM))


@pytest.fixture(scope="module")
def reference_rows():
    return intents(800, 2, UNIFORM)


def test_holm_matches_its_step_down_definition():
    # sorted 0.01, 0.02, 0.03, 0.5 times 4, 3, 2, 1: 0.04, 0.06, 0.06 (monotone), 0.5
    assert np.allclose(holm(np.array([0.03, 0.5, 0.01, 0.02])), [0.06, 0.5, 0.04, 0.06])


def test_mmd_sees_a_changed_mix_of_the_same_kinds_of_messages():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(10, 16))

    def draw(n: int, kinds: int, seed: int) -> np.ndarray:
        local = np.random.default_rng(seed)
        return centres[local.integers(0, kinds, n)] + local.normal(scale=0.3, size=(n, 16))

    mmd, p_value = mmd_permutation_test(draw(300, 10, 1), draw(300, 7, 2), 100, seed=0)  # 3 kinds of 10 gone
    assert p_value == 1 / 101 and mmd > 0
    assert mmd_permutation_test(draw(300, 10, 1), draw(300, 10, 2), 100, seed=0)[1] > 0.05


def test_the_same_traffic_again_is_no_drift(intent_model, reference_rows):
    result = measure_drift(intent_model, unannotated(intents(800, 3, UNIFORM)), reference=unannotated(reference_rows, "reference.csv"))
    assert result.verdict == "no drift" and result.reasons == []
    assert not any(c.direction for c in result.label_shift.labels)
    assert result.label_shift.overall["p_value"] > 0.05 and not result.coverage.fired
    assert 0.4 < result.embeddings.auroc < 0.55 and result.embeddings.mmd_p_value > 0.05 and result.embeddings.embedding == "tfidf-lsa"
    assert all(abs(c.change) < 0.05 for c in result.label_shift.labels)


def test_removed_and_over_represented_labels_are_drift_and_named(intent_model, reference_rows):
    result = measure_drift(intent_model, unannotated(intents(800, 3, SHIFTED)), reference=unannotated(reference_rows, "reference.csv"))
    assert result.verdict == "drift"
    assert {c.label for c in result.label_shift.moved("rose")} == {"refund", "login"}
    assert {c.label for c in result.label_shift.moved("fell")} == {"cancel", "praise"}
    delivery = next(c for c in result.label_shift.labels if c.label == "delivery")
    assert delivery.direction is None and abs(delivery.change) < 0.05  # the label whose share was kept
    assert result.label_shift.overall["p_value"] < 1e-10
    assert result.reasons[0].startswith("predicted labels rose: ") and "praise" in result.reasons[0]


def test_a_changed_vocabulary_with_the_same_labels_fires_the_embedding_test_only(intent_model, reference_rows):
    signature = " Sent from the Outlook mobile app, kind regards, Jordan from accounting"  # words the model never saw
    current = unannotated(intents(800, 3, UNIFORM, extra=signature))
    result = measure_drift(intent_model, current, reference=unannotated(reference_rows, "reference.csv"))
    assert not result.label_shift.fired and not result.coverage.fired
    assert result.embeddings.classifier_fired and result.embeddings.auroc > 0.9 and result.embeddings.mmd_fired
    assert result.verdict == "drift" and [reason.split()[:2] for reason in result.reasons] == [["a", "classifier"], ["the", "messages'"]]


def test_the_embedding_test_embeds_at_most_max_embedded_messages_per_side(intent_model, reference_rows):
    result = measure_drift(intent_model, unannotated(intents(800, 3, UNIFORM)), reference=unannotated(reference_rows), max_embedded=100)
    assert (result.embeddings.n_reference, result.embeddings.n_current) == (100, 100)
    assert (result.n_reference, result.n_current) == (800, 800)  # the label and coverage tests see every message


def test_a_transfer_set_reference_is_reused_not_rescored(intent_model, reference_rows, tmp_path, monkeypatch):
    transfer = tmp_path / "transfer"
    label_messages(intent_model, unannotated(reference_rows, "reference.csv"), transfer)
    current = unannotated(intents(800, 3, SHIFTED))
    from_file = measure_drift(intent_model, current, reference=unannotated(reference_rows, "reference.csv"))
    scored: list[str] = []
    original = TfidfBaseline.decision_function

    def recording(self, texts):
        scored.extend(texts)
        return original(self, texts)

    monkeypatch.setattr(TfidfBaseline, "decision_function", recording)
    from_transfer = measure_drift(intent_model, current, transfer_dir=transfer)
    assert from_transfer.reused == 800 and sorted(scored) == sorted(current.texts)  # only the current messages were scored
    assert [c.reference_count for c in from_transfer.label_shift.labels] == [c.reference_count for c in from_file.label_shift.labels]
    assert from_transfer.verdict == "drift" and from_transfer.reasons[0] == from_file.reasons[0]


def test_another_models_transfer_set_is_refused(intent_model, reference_rows, tmp_path):
    other = baseline(tmp_path / "other", intents(600, 10, UNIFORM), intents(150, 11, UNIFORM))
    transfer = tmp_path / "transfer"
    label_messages(other, unannotated(reference_rows), transfer)
    with pytest.raises(TextdistillError, match="another model's"):
        measure_drift(intent_model, unannotated(intents(100, 3, UNIFORM)), transfer_dir=transfer)


def test_multi_label_labels_are_tested_one_by_one(tmp_path):
    model = baseline(tmp_path / "multi", two_requests(500, 0, UNIFORM), two_requests(150, 1, UNIFORM), multi_label=True)
    reference = unannotated(two_requests(500, 2, UNIFORM))
    same = measure_drift(model, unannotated(two_requests(500, 3, UNIFORM)), reference=reference)
    assert same.multi_label and same.label_shift.overall is None and same.verdict == "no drift"
    shifted = measure_drift(model, unannotated(two_requests(500, 3, SHIFTED)), reference=reference)
    assert {c.label for c in shifted.label_shift.moved("rose")} == {"refund", "login"}
    assert {c.label for c in shifted.label_shift.moved("fell")} == {"cancel", "praise"}
    assert "decision threshold" in shifted.coverage.rule


def test_two_class_spam_share_rising_is_named(tmp_path):
    model = baseline(tmp_path / "spam", two_class(600, 0), two_class(150, 1))
    reference = unannotated(two_class(400, 2))
    assert measure_drift(model, unannotated(two_class(400, 3)), reference=reference).verdict == "no drift"
    result = measure_drift(model, unannotated(two_class(400, 3, positive_share=0.6)), reference=reference)
    assert [c.label for c in result.label_shift.moved("rose")] == ["spam"] and [c.label for c in result.label_shift.moved("fell")] == ["ham"]


def test_coverage_uses_the_automation_thresholds_when_the_model_has_them(tmp_path, reference_rows):
    from textdistill.models.automation import automate_model

    model = baseline(tmp_path / "automated", intents(600, 0, UNIFORM), intents(150, 1, UNIFORM))
    automate_model(model, messages(intents(300, 4, UNIFORM)), target_precision=0.99)
    result = measure_drift(model, unannotated(intents(400, 3, UNIFORM)), reference=unannotated(reference_rows))
    assert "automation threshold" in result.coverage.rule and "target precision 0.99" in result.coverage.rule


def test_a_transformers_pooled_features_are_its_embeddings(tiny_encoder_dir, tmp_path):
    from textdistill.data.labels import LabelSpace
    from textdistill.models.transformer import EncoderConfig, TransformerClassifier

    teacher = TransformerClassifier(EncoderConfig(model=str(tiny_encoder_dir), max_length=24))
    teacher.label_space = LabelSpace.from_label_sets([(label,) for label in INTENTS], False)
    teacher.build(str(tiny_encoder_dir), len(teacher.label_space))
    teacher.save(tmp_path / "teacher", config={}, training_data={})
    reference = unannotated(intents(200, 2, UNIFORM))
    result = measure_drift(tmp_path / "teacher", unannotated(intents(200, 3, UNIFORM, extra=" hello hi please help thanks great service")), reference=reference)
    assert result.embeddings.embedding == "encoder" and result.embeddings.fired
    same = measure_drift(tmp_path / "teacher", unannotated(intents(200, 3, UNIFORM)), reference=reference)
    assert not same.embeddings.fired


def test_the_command_prints_the_verdict_and_writes_json(intent_model, reference_rows, tmp_path):
    reference, current = write_csv(tmp_path / "reference.csv", reference_rows), write_csv(tmp_path / "current.csv", intents(800, 3, SHIFTED))
    out = tmp_path / "drift.json"
    result = run_cli("drift", intent_model, "--reference", reference, "--current", current, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "Verdict: DRIFT" in result.stdout and "praise" in result.stdout and "Coverage:" in result.stdout
    written = json.loads(out.read_text())
    assert written["verdict"] == "drift" and written["settings"]["alpha"] == 0.05
    assert {c["label"] for c in written["label_shift"]["labels"] if c["direction"] == "fell"} == {"cancel", "praise"}
    same = run_cli("drift", intent_model, "--reference", reference, "--current", write_csv(tmp_path / "same.csv", intents(800, 3, UNIFORM)), "--quiet")
    assert same.returncode == 0 and "Verdict: NO DRIFT" in same.stdout  # no drift is a finding too, exit 0


def test_bad_input_exits_2_naming_file_row_and_column(intent_model, reference_rows, tmp_path):
    reference = write_csv(tmp_path / "reference.csv", reference_rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\na,where is my parcel\nb,\nc,refund please\n", encoding="utf-8")
    result = run_cli("drift", intent_model, "--reference", reference, "--current", bad, "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.csv, row 2, column 'text'" in result.stderr and "empty" in result.stderr
    not_a_transfer_set = tmp_path / "empty-dir"
    not_a_transfer_set.mkdir()
    result = run_cli("drift", intent_model, "--reference", not_a_transfer_set, "--current", reference, "--quiet")
    assert result.returncode == 2 and "is not a transfer set" in result.stderr
    few = write_csv(tmp_path / "few.csv", reference_rows[:5])
    result = run_cli("drift", intent_model, "--reference", reference, "--current", few, "--quiet")
    assert result.returncode == 2 and "at least 20" in result.stderr
    result = run_cli("drift", intent_model, "--reference", reference, "--current", reference, "--alpha", "1.5", "--quiet")
    assert result.returncode == 2 and "--alpha is 1.5" in result.stderr


def test_messages_the_reject_option_rejects_are_not_covered(intent_model, reference_rows, tmp_path):
    import shutil

    from textdistill.models.out_of_scope import fit_model

    directory = shutil.copytree(intent_model, tmp_path / "rejecting")
    rows = intents(400, 21, UNIFORM)
    messages = MessageSet([t for t, _ in rows], [f"r{i}" for i in range(len(rows))], [labels for _, labels in rows], list(range(1, len(rows) + 1)), "train.csv", "label")
    fit_model(directory, messages, messages, score="energy", max_in_scope_loss=0.05)
    current = unannotated(intents(300, 3, UNIFORM))
    plain = measure_drift(intent_model, current, reference=unannotated(reference_rows, "reference.csv"))
    rejecting = measure_drift(directory, current, reference=unannotated(reference_rows, "reference.csv"))
    assert "not out of scope" in rejecting.coverage.rule and "not out of scope" not in plain.coverage.rule
    assert rejecting.coverage.current < plain.coverage.current
