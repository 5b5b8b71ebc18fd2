"""Automation thresholds: per label, the lowest confidence at which the model's predictions of
it reach a target precision on validation data, and the recall that leaves.

A message counts as a prediction of label L at threshold t when the model predicts L (single-label:
L is the most probable label or one of its ancestors; multi-label: L is in the predicted set, its
decision threshold applied) and L's confidence (:meth:`LabelSpace.confidences`: a parent's is its
children's sum in single-label hierarchies, at least their highest in multi-label ones) is at least
t. Automation only ever withholds predicted labels, it never adds one. The threshold is the lowest
of sklearn's ``precision_recall_curve`` at which the label's validation precision reaches the
target, so it keeps the most recall the target allows.

A label is *unreached* when no threshold reaches its target or when it has fewer than
:data:`MIN_VALIDATION_POSITIVES` validation messages; it is never automated: ``predict`` and
``serve`` always withhold it. Kept labels bring their ancestors (a message that is surely
``Billing > Refund`` is ``Billing``), so a hierarchy stays consistent.

The thresholds live in ``automation.json`` beside the model's ``manifest.json`` (written by
``textdistill automate``), which names the model they were chosen for: a model without the file
predicts as before, and a file left behind by another model in the same directory is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve

from textdistill.data.labels import LabelSpace, ancestors
from textdistill.errors import ModelError, TextdistillError
from textdistill.models.manifest import Manifest, read_beside_model

AUTOMATION_FILE = "automation.json"
FORMAT_VERSION = 1
DEFAULT_TARGET_PRECISION = 0.95
# At 0.95, precision measured on fewer than 5 messages of a label moves in steps of 20 points or
# more: one message decides whether the label "reaches" the target, which says nothing about its
# precision on real traffic. Such labels are listed as unreached and never automated.
MIN_VALIDATION_POSITIVES = 5

BELOW_THRESHOLD = "below_threshold"
TARGET_NOT_REACHED = "target_not_reached"


@dataclass(frozen=True)
class LabelAutomation:
    """One label's threshold and what it gives on validation; ``threshold`` is None when unreached."""

    label: str
    target_precision: float
    threshold: float | None
    precision: float | None
    recall: float | None
    support: int
    average_precision: float | None
    reached: bool
    why_not: str | None = None


@dataclass(frozen=True)
class Withheld:
    """A predicted label that is not returned: below its threshold, or never automated."""

    label: str
    confidence: float
    threshold: float | None
    reason: str


@dataclass
class Automation:
    """Per-label automation thresholds of one model (what ``automation.json`` holds)."""

    target_precision: float
    labels: list[LabelAutomation]
    model: dict[str, Any]  # the manifest they were chosen for: kind, created, training data sha256
    validation: dict[str, Any]
    chosen_on: str | None = None  # the kind of the model they were chosen on, when copied (ONNX)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION

    @property
    def by_label(self) -> dict[str, LabelAutomation]:
        return {entry.label: entry for entry in self.labels}

    @property
    def n_reached(self) -> int:
        return sum(entry.reached for entry in self.labels)

    def apply(self, predicted: Sequence[str], confidences: Mapping[str, float]) -> tuple[tuple[str, ...], list[Withheld]]:
        """The predicted labels (ancestors included) that are automated, sorted, and those withheld.

        A label is kept when its confidence reaches its threshold, or when a kept descendant
        implies it; an unreached label (or one without an entry) is withheld whatever its confidence.
        """
        entries = self.by_label
        reaching = set()
        withheld = []
        for label in predicted:
            entry = entries.get(label)
            confidence = float(confidences[label])
            if entry is not None and entry.reached and confidence >= entry.threshold:
                reaching.add(label)
            else:
                reason = BELOW_THRESHOLD if entry is not None and entry.reached else TARGET_NOT_REACHED
                withheld.append(Withheld(label, confidence, entry.threshold if entry is not None else None, reason))
        sep = self.model.get("hierarchy_sep")
        kept = reaching | {parent for label in reaching for parent in ancestors(label, sep)}
        return tuple(sorted(kept)), [w for w in withheld if w.label not in kept]

    def write(self, directory: Path) -> Path:
        path = Path(directory) / AUTOMATION_FILE
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def model_identity(manifest: Manifest) -> dict[str, Any]:
    """What ties ``automation.json`` to one saved model: retraining into the same directory changes it."""
    return {
        "kind": manifest.kind,
        "created": manifest.created,
        "training_data_sha256": (manifest.training_data or {}).get("sha256"),
        "labels": list(manifest.labels),
        "multi_label": manifest.multi_label,
        "hierarchy_sep": manifest.hierarchy_sep,
    }


def automated_labels(space: LabelSpace) -> list[str]:
    """The labels that get a threshold: the model's, and in single-label hierarchies the parents
    too (they are not labels of the model, but have confidences and are returned)."""
    labels = set(space.labels)
    if space.hierarchical and not space.multi_label:
        labels.update(parent for label in space.labels for parent in ancestors(label, space.hierarchy_sep))
    return sorted(labels)


def predicted_with_ancestors(space: LabelSpace, predicted: Sequence[str]) -> tuple[str, ...]:
    """A predicted label set with the ancestors of its labels (multi-label sets already have them)."""
    return tuple(sorted({*predicted, *(a for label in predicted for a in ancestors(label, space.hierarchy_sep))}))


def _matrices(space: LabelSpace, proba: np.ndarray, predicted: Sequence[Sequence[str]], true_sets: Sequence[Sequence[str]], labels: list[str]):
    """Confidence, predicted and true indicator matrices (n, A) over ``labels``, ancestors included."""
    column = {label: j for j, label in enumerate(labels)}
    shape = (len(proba), len(labels))
    confidence, is_predicted, is_true = np.zeros(shape), np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    for i, row in enumerate(np.asarray(proba)):
        for label, value in space.confidences(row).items():
            confidence[i, column[label]] = value
        for label in predicted_with_ancestors(space, predicted[i]):
            is_predicted[i, column[label]] = True
        for label in predicted_with_ancestors(space, true_sets[i]):
            is_true[i, column[label]] = True
    return confidence, is_predicted, is_true


def choose_thresholds(
    space: LabelSpace,
    proba: np.ndarray,
    predicted: Sequence[Sequence[str]],
    true_sets: Sequence[Sequence[str]],
    target_precision: float = DEFAULT_TARGET_PRECISION,
    label_precision: Mapping[str, float] | None = None,
) -> list[LabelAutomation]:
    """Per label (:func:`automated_labels`), the lowest threshold at which its predictions on
    validation (``proba`` (n, L), the model's ``predicted`` label sets, the ``true_sets``) reach
    its target precision: ``label_precision[label]`` if given, else ``target_precision``."""
    label_precision = dict(label_precision or {})
    check_targets(space, target_precision, label_precision)
    labels = automated_labels(space)
    confidence, is_predicted, is_true = _matrices(space, proba, predicted, true_sets, labels)
    return [
        _choose(label, confidence[:, j], is_predicted[:, j], is_true[:, j], label_precision.get(label, target_precision))
        for j, label in enumerate(labels)
    ]


def _choose(label: str, confidence: np.ndarray, predicted: np.ndarray, true: np.ndarray, target: float) -> LabelAutomation:
    support = int(true.sum())
    average_precision = float(average_precision_score(true, confidence)) if support else None
    if support < MIN_VALIDATION_POSITIVES:
        why = f"{support} validation message{'s' if support != 1 else ''} of this label; at least {MIN_VALIDATION_POSITIVES} are needed"
        return LabelAutomation(label, target, None, None, None, support, average_precision, False, why)
    # a message the model does not predict the label for scores -1: never a prediction at any threshold
    score = np.where(predicted, confidence, -1.0)
    precision, recall, thresholds = precision_recall_curve(true, score)
    reaching = np.flatnonzero((thresholds >= 0) & (precision[:-1] >= target))
    if not len(reaching):
        best = precision[:-1][thresholds >= 0]
        why = f"the highest validation precision at any threshold is {best.max():.3f}" if len(best) else "the model never predicts it on validation"
        return LabelAutomation(label, target, None, None, None, support, average_precision, False, why)
    i = int(reaching[0])  # thresholds ascend: the first reaching one is the lowest
    return LabelAutomation(label, target, float(thresholds[i]), float(precision[i]), float(recall[i]), support, average_precision, True)


def automate_batch(automation: Automation, space: LabelSpace, proba: np.ndarray, predicted: Sequence[Sequence[str]]) -> list[tuple[tuple[str, ...], list[Withheld]]]:
    """:meth:`Automation.apply` to each message of a batch: probabilities (n, L) and predicted label sets."""
    return [automation.apply(predicted_with_ancestors(space, labels), space.confidences(row)) for labels, row in zip(predicted, np.asarray(proba))]


def measure_on(
    automation: Automation, space: LabelSpace, proba: np.ndarray, predicted: Sequence[Sequence[str]], true_sets: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """What the saved thresholds give on other annotated messages (test data): per label the
    threshold, precision, recall, support and average precision, and which labels reach their
    target there (a label without predictions at its threshold has no precision and does not).
    A message counts as automated for a label as :meth:`Automation.apply` decides it."""
    labels = [entry.label for entry in automation.labels]
    confidence, is_predicted, is_true = _matrices(space, proba, predicted, true_sets, labels)
    thresholds = np.array([entry.threshold if entry.reached else np.inf for entry in automation.labels])
    automated = is_predicted & (confidence >= thresholds)
    column = {label: j for j, label in enumerate(labels)}
    for j, label in enumerate(labels):  # a kept label brings its ancestors, as predict and serve return them
        for parent in ancestors(label, space.hierarchy_sep):
            automated[:, column[parent]] |= automated[:, j]
    rows = []
    for j, entry in enumerate(automation.labels):
        support, n_automated = int(is_true[:, j].sum()), int(automated[:, j].sum())
        hits = int((automated[:, j] & is_true[:, j]).sum())
        precision = hits / n_automated if n_automated else None
        rows.append(
            {
                "label": entry.label,
                "target_precision": entry.target_precision,
                "threshold": entry.threshold,
                "reached_on_validation": entry.reached,
                "precision": precision,
                "recall": hits / support if support else None,
                "support": support,
                "average_precision": float(average_precision_score(is_true[:, j], confidence[:, j])) if support else None,
                "automated": n_automated,
                "reached": precision is not None and precision >= entry.target_precision,
                "curve": _curve(confidence[:, j], is_predicted[:, j], is_true[:, j]) if support else None,
            }
        )
    return {
        "target_precision": automation.target_precision,
        "labels": rows,
        "n_labels": len(rows),
        "n_reached_on_validation": automation.n_reached,
        "n_reached": sum(row["reached"] for row in rows),
        # the share of messages with at least one label automated
        "automated_share": float(automated.any(axis=1).mean()) if len(proba) else None,
    }


CURVE_POINTS = 50  # most points of a stored precision/recall curve


def _curve(confidence: np.ndarray, predicted: np.ndarray, true: np.ndarray) -> dict[str, list[float]] | None:
    """The label's precision/recall curve as automation sees it (a message counts once the model
    predicts the label and its confidence reaches the threshold), at most CURVE_POINTS points."""
    score = np.where(predicted, confidence, -1.0)
    precision, recall, thresholds = precision_recall_curve(true, score)
    keep = np.r_[thresholds >= 0, True]  # the last point (recall 0) has no threshold
    precision, recall = precision[keep], recall[keep]
    if len(precision) < 2:
        return None
    rows = np.unique(np.linspace(0, len(precision) - 1, min(CURVE_POINTS, len(precision))).round().astype(int))
    return {"recall": [round(float(v), 4) for v in recall[rows]], "precision": [round(float(v), 4) for v in precision[rows]]}


def check_targets(space: LabelSpace, target_precision: float, label_precision: Mapping[str, float]) -> None:
    """A :class:`TextdistillError` for a target outside (0, 1] or a label the model does not have."""
    for name, value in (("the target precision", target_precision), *((f"the target precision of {k!r}", v) for k, v in label_precision.items())):
        if not (isinstance(value, int | float) and 0 < value <= 1):  # also refuses NaN
            raise TextdistillError(f"{name} is {value}; a precision is above 0 and at most 1 (0.95: 95 of 100 automated predictions right).")
    known = automated_labels(space)
    unknown = [label for label in label_precision if label not in known]
    if unknown:
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise TextdistillError(f"the model has no label {unknown[0]!r} to give a target precision; its labels are {shown}. Spell it as the model's manifest.json does.")


def parse_label_precision(items: Sequence[str]) -> dict[str, float]:
    """``LABEL=PRECISION`` items (``Billing=0.99``; the label may hold ``=``: the last one splits)."""
    targets = {}
    for item in items:
        label, sep, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not label.strip() or number is None or not math.isfinite(number):
            raise TextdistillError(f"--label-precision {item!r} is not LABEL=PRECISION; write it like --label-precision 'Billing=0.99'.")
        targets[label.strip()] = number
    return targets


def read_automation(directory: str | Path, manifest: Manifest) -> Automation | None:
    """The automation thresholds saved beside the model in ``directory`` with ``manifest``; None
    when it has none. A :class:`ModelError` naming the file when it is damaged or was chosen for
    another model."""
    path = Path(directory) / AUTOMATION_FILE

    def build(data: dict[str, Any]) -> Automation:
        labels = [LabelAutomation(**entry) for entry in data.pop("labels")]
        return Automation(labels=labels, **data)

    automation = read_beside_model(path, "an automation file", FORMAT_VERSION, build, _REDO_HINT)
    if automation is None:
        return None
    if automation.model != model_identity(manifest):
        raise ModelError("holds thresholds chosen for another model (the model in this directory was saved again since).", file=path, hint=_REDO_HINT)
    if any(entry.reached and not isinstance(entry.threshold, int | float) for entry in automation.labels):
        raise ModelError("has a reached label without a numeric threshold.", file=path, hint=_REDO_HINT)
    return automation


_REDO_HINT = "run `textdistill automate MODEL --validation FILE` again to choose them for this model, or delete the file to predict without them."


def rebind(automation: Automation, manifest: Manifest, chosen_on: str) -> Automation:
    """The same thresholds tied to another model (an ONNX copy), saying which kind they were chosen on."""
    return Automation(automation.target_precision, automation.labels, model_identity(manifest), automation.validation, automation.chosen_on or chosen_on, automation.created)


def automate_model(
    model_dir: str | Path,
    messages,
    *,
    target_precision: float = DEFAULT_TARGET_PRECISION,
    label_precision: Mapping[str, float] | None = None,
    skip_bad_rows: bool = False,
) -> Automation:
    """Choose the automation thresholds of the model saved in ``model_dir`` on annotated
    validation ``messages`` (a :class:`~textdistill.data.messages.MessageSet`) and save them
    there; targets are checked before the model predicts."""
    from textdistill.evaluate.evaluation import drop_unknown_labels, predict_proba_batched  # evaluation uses this module
    from textdistill.models.base import load_model
    from textdistill.models.manifest import data_fingerprint

    model_dir = Path(model_dir)
    model = load_model(model_dir)
    space = model.label_space
    check_targets(space, target_precision, label_precision or {})
    messages = drop_unknown_labels(messages.annotated(), model, skip_bad_rows)
    proba = predict_proba_batched(model, messages.texts, "Choosing thresholds")
    predicted = model.predict_label_sets(messages.texts, proba)
    labels = choose_thresholds(space, proba, predicted, messages.labels, target_precision, label_precision)
    validation = {**data_fingerprint(messages.texts, messages.labels, messages.source), "skipped_rows": len(messages.skipped)}
    automation = Automation(target_precision, labels, model_identity(model.manifest), validation)
    automation.write(model_dir)
    return automation
