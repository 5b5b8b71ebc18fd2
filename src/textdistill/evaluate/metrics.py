"""Quality metrics: accuracy, micro / macro precision, recall and F1, per-label scores with
average precision, per-level scores for hierarchies, the most confused label pairs, and for
two-class data the positive class's scores."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_recall_fscore_support
from sklearn.preprocessing import MultiLabelBinarizer

from textdistill.data.labels import LabelSpace
from textdistill.errors import TextdistillError

N_CONFUSED_PAIRS = 20


def quality_metrics(
    space: LabelSpace,
    true_sets: Sequence[Sequence[str]],
    pred_sets: Sequence[Sequence[str]],
    proba: np.ndarray,
    positive_label: str | None = None,
) -> dict:
    """All quality numbers of one model on one annotated test set.

    Labels are compared as closed sets (a hierarchical label implies its parents) in
    multi-label data. Macro averages run over the labels that occur in the test data or the
    predictions, as scikit-learn does. Two-class single-label data also gets the scores of
    its positive class (``positive_label``, else the rarer class: see :func:`choose_positive_label`).
    """
    y_true = space.encode(true_sets)
    y_pred = space.encode(pred_sets)
    present = np.flatnonzero(y_true.any(axis=0) | y_pred.any(axis=0))
    if space.multi_label:
        accuracy, samples_f1 = None, float(f1_score(y_true, y_pred, average="samples", zero_division=0))
    else:
        accuracy, samples_f1 = float(accuracy_score(y_true.argmax(1), y_pred.argmax(1))), None
    micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    macro = precision_recall_fscore_support(y_true[:, present], y_pred[:, present], average="macro", zero_division=0)
    per_label = per_label_metrics(space, y_true, y_pred, proba)
    return {
        "accuracy": accuracy,
        "micro_precision": float(micro[0]),
        "micro_recall": float(micro[1]),
        "micro_f1": float(micro[2]),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "samples_f1": samples_f1,
        "per_label": per_label,
        "positive_class": _positive_class(space, true_sets, per_label, positive_label),
        "by_level": level_metrics(space, true_sets, pred_sets),
        "confused_pairs": confused_pairs(space, true_sets, pred_sets),
    }


def per_label_metrics(space: LabelSpace, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> list[dict]:
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    rows = []
    for j, label in enumerate(space.labels):
        has_positive = y_true[:, j].any()
        rows.append(
            {
                "label": label,
                "precision": float(precision[j]),
                "recall": float(recall[j]),
                "f1": float(f1[j]),
                "support": int(support[j]),
                # undefined without a positive example in the test data
                "average_precision": float(average_precision_score(y_true[:, j], proba[:, j])) if has_positive else None,
            }
        )
    return rows


def is_two_class(space: LabelSpace) -> bool:
    """Single-label data with exactly two classes: one of them is "the positive class"."""
    return not space.multi_label and len(space) == 2


def choose_positive_label(space: LabelSpace, true_sets: Sequence[Sequence[str]], given: str | None = None) -> str | None:
    """The positive class of two-class single-label data: ``given``, else the rarer class of
    ``true_sets`` (a tie goes to the first label in label order); None for other data.

    Raises TextdistillError when ``given`` is not one of the labels, or the data is not two-class.
    """
    if given is not None and not is_two_class(space):
        kind = "multi-label" if space.multi_label else f"{len(space)}-class"
        raise TextdistillError(
            f"positive label {given!r}: a positive class applies to two-class single-label models only, and this model is {kind} "
            "(its per-label scores are in the evaluation's per_label). Leave --positive-label (or [evaluate] positive_label) out."
        )
    if not is_two_class(space):
        return None
    if given is None:
        counts = Counter(labels[0] for labels in true_sets)
        return min(space.labels, key=lambda label: counts[label])  # min keeps the first of equals
    if given not in space:
        raise TextdistillError(
            f"positive label {given!r} is not a label of this model; its labels are: {', '.join(map(repr, space.labels))}. "
            "Pass one of them to --positive-label (or [evaluate] positive_label), or leave it out for the rarer class."
        )
    return given


def _positive_class(space: LabelSpace, true_sets: Sequence[Sequence[str]], per_label: list[dict], given: str | None) -> dict | None:
    label = choose_positive_label(space, true_sets, given)
    if label is None:
        return None
    row = next(row for row in per_label if row["label"] == label)
    return {**row, "chosen": "given" if given is not None else "rarer class"}


def level_metrics(space: LabelSpace, true_sets: Sequence[Sequence[str]], pred_sets: Sequence[Sequence[str]]) -> list[dict]:
    """Scores with every label cut to its ancestor at each level of the hierarchy."""
    if not space.hierarchical:
        return []
    rows = []
    for level in range(1, space.depth + 1):
        true_level = [space.at_level(labels, level) for labels in true_sets]
        pred_level = [space.at_level(labels, level) for labels in pred_sets]
        binarizer = MultiLabelBinarizer().fit(true_level + pred_level)
        y_true, y_pred = binarizer.transform(true_level), binarizer.transform(pred_level)
        rows.append(
            {
                "level": level,
                "accuracy": None if space.multi_label else float(np.mean([t == p for t, p in zip(true_level, pred_level)])),
                "micro_f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
                "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
                "n_labels": len({label for labels in true_level for label in labels}),
            }
        )
    return rows


def confused_pairs(space: LabelSpace, true_sets: Sequence[Sequence[str]], pred_sets: Sequence[Sequence[str]]) -> list[dict]:
    """The most frequent (true, predicted) mix-ups.

    Multi-label: every label a message has but did not get, paired with every label it got
    but does not have. Ancestors are left out so a pair names the labels actually confused,
    and a prediction that stops at the right parent is not counted as a confusion.
    """
    counts: Counter[tuple[str, str]] = Counter()
    for true, pred in zip(true_sets, pred_sets):
        true_leaves, pred_leaves = _leaves(space, true), _leaves(space, pred)
        for missed in true_leaves - pred_leaves:
            for wrong in pred_leaves - true_leaves:
                if not _related(space, missed, wrong):
                    counts[(missed, wrong)] += 1
    return [{"true": t, "predicted": p, "count": c} for (t, p), c in counts.most_common(N_CONFUSED_PAIRS)]


def _leaves(space: LabelSpace, labels: Sequence[str]) -> set[str]:
    labels = set(labels)
    if not space.hierarchical:
        return labels
    return {label for label in labels if not any(other.startswith(label + space.hierarchy_sep) for other in labels)}


def _related(space: LabelSpace, a: str, b: str) -> bool:
    """Whether one label is an ancestor of the other."""
    sep = space.hierarchy_sep
    return bool(sep) and (a.startswith(b + sep) or b.startswith(a + sep))
