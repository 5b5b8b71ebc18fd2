"""Which annotations look wrong ("Check label", "Missed label"): confident learning on
out-of-sample probabilities.

Every annotated message gets a probability for each label from a cheap model that did not see
it: K-fold cross-validation, stratified by label (``MultilabelStratifiedKFold`` for multi-label
data), with one model per fold. The model is the TF-IDF baseline
(:class:`~textdistill.models.baseline.TfidfBaseline`, refit per fold), or a logistic-regression
head on a transformer's frozen pooled features (computed once for all messages; only the head
is refit per fold). A teacher fine-tuned on these very annotations has learnt their errors
too; one trained on other data, or with ``--method head`` (a frozen encoder), judges them
more fairly. cleanlab then flags the annotations that confident learning finds wrong and
scores every message's label quality (0 to 1, lower = more suspect).

Labels are checked on the columns :class:`~textdistill.data.labels.LabelSpace` encodes:
single-label, each full path (``Billing > Refund``) is one class; multi-label, every label and
its ancestors are columns of their own, so a missing ``Billing > Refund`` on a message
annotated ``Delivery`` is a missing child and, where ``Billing`` is not given either, a missing
parent. A label that some fold's training part lacks (a label annotated once) gets probability
0 from that fold's model, so its message ranks as suspect, and a warning says so.
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedKFold
from scipy.special import expit, softmax
from sklearn.model_selection import StratifiedKFold

from textdistill.data.labels import LabelSpace
from textdistill.data.messages import MessageSet, require_two_classes
from textdistill.errors import DataError, ModelError, TextdistillError
from textdistill.progress import track

FEATURES = ("tfidf", "teacher")
HEAD_C = 1.0  # the linear probe's C when it has no validation data to choose one


@dataclass
class LabelCheck:
    """The check of each message, in the order of the input.

    ``flagged``: the messages cleanlab's ``find_label_issues`` finds wrong; ``score``: cleanlab's
    label quality (lower = more suspect); ``rank``: by score, 1 the most suspect. ``suggested``: single-label, the out-of-sample model's
    most probable label; multi-label, the given labels (with their ancestors) with each label
    added (``missing``) or removed (``extra``) that cleanlab flags on the message or on which
    the model's probability is on the other side of 0.5.
    """

    ids: list[str]
    texts: list[str]
    given: list[tuple[str, ...]]
    suggested: list[tuple[str, ...]]
    missing: list[tuple[str, ...]]
    extra: list[tuple[str, ...]]
    score: np.ndarray
    flagged: np.ndarray
    rank: np.ndarray
    multi_label: bool
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    def ranked(self, top: int | None = None) -> np.ndarray:
        """Positions of the ``top`` most suspect messages, most suspect first; of all that cleanlab
        flags when ``top`` is None."""
        order = np.argsort(self.rank)
        return order[self.flagged[order]] if top is None else order[:top]

    def write_csv(self, path: str | Path, positions: Sequence[int], label_sep: str = ";") -> Path:
        """The messages at ``positions`` as a CSV: id, text, given_labels, suggested_labels, score,
        rank, flagged (and missing_labels, extra_labels for multi-label data), label sets joined
        by ``label_sep`` so that the loader reads them back (``--labels-column given_labels``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = ["id", "text", "given_labels", "suggested_labels", "score", "rank", "flagged"]
        if self.multi_label:
            header += ["missing_labels", "extra_labels"]
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for i in positions:
                row = [self.ids[i], self.texts[i], label_sep.join(self.given[i]), label_sep.join(self.suggested[i]),
                       f"{self.score[i]:.6f}", int(self.rank[i]), str(bool(self.flagged[i])).lower()]  # fmt: skip
                if self.multi_label:
                    row += [label_sep.join(self.missing[i]), label_sep.join(self.extra[i])]
                writer.writerow(row)
        return path


def check_labels(
    messages: MessageSet,
    *,
    features: str = "tfidf",
    model_dir: str | Path | None = None,
    folds: int = 5,
    seed: int = 0,
) -> LabelCheck:
    """Check every annotation of ``messages`` (all annotated) by ``folds``-fold cross-validation
    and cleanlab; ``features`` is ``tfidf`` or ``teacher`` (the transformer saved in
    ``model_dir``)."""
    cleanlab = _require_cleanlab()
    if features not in FEATURES:
        raise TextdistillError(f"features is {features!r}: choose one of {', '.join(FEATURES)}.")
    if features == "teacher" and model_dir is None:
        raise TextdistillError("features='teacher' needs model_dir, the directory of a saved transformer teacher.")
    label_sets = messages.labels
    multi_label = bool(messages.multi_label)
    require_two_classes(messages)
    space = LabelSpace.from_label_sets(label_sets, multi_label, messages.hierarchy_sep)
    if not len(space):
        raise DataError(
            "no annotated message has a label: there is nothing to check",
            file=messages.source,
            column=messages.label_column,
            hint="check that the right column is used as the labels (--labels-column)",
        )
    folds_of = _folds(messages, space, folds, seed)
    if features == "tfidf":
        proba = _tfidf_proba(messages.texts, label_sets, space, folds_of)
    else:
        proba = _head_proba(_teacher_features(Path(model_dir), messages.texts), label_sets, space, folds_of)
    check_warnings = _unseen_label_warnings(label_sets, space, folds_of)
    with warnings.catch_warnings():
        # cleanlab's "May not flag all label issues in class: K": a label annotated once, which
        # _unseen_label_warnings names
        warnings.filterwarnings("ignore", message="May not flag all label issues", category=UserWarning)
        flagged, score, suggested, missing, extra = _cleanlab(cleanlab, proba, label_sets, space)
    # By score alone: on BANKING77 with 5 % of the labels flipped, 0.92 of the flips are in the
    # top k, against 0.80 with cleanlab's flagged messages first.
    order = np.argsort(score, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return LabelCheck(
        list(messages.ids), list(messages.texts), [tuple(labels) for labels in label_sets], suggested, missing, extra,
        np.asarray(score, dtype=np.float64), np.asarray(flagged, dtype=bool), rank, multi_label, check_warnings,
    )  # fmt: skip


def _cleanlab(cleanlab, proba: np.ndarray, label_sets: Sequence[tuple[str, ...]], space: LabelSpace):
    """(flagged, score, suggested, missing, extra) of each message, from out-of-sample ``proba``."""
    if not space.multi_label:
        y = space.encode_single(label_sets)
        flagged = cleanlab.filter.find_label_issues(y, proba, n_jobs=1)
        score = cleanlab.rank.get_label_quality_scores(y, proba)
        suggested = [(space.labels[j],) for j in proba.argmax(axis=1)]
        return flagged, score, suggested, [()] * len(y), [()] * len(y)
    y = space.encode(label_sets)
    if len(space) == 1:  # the label or its absence: cleanlab's multi-label scores need two columns; this is their binary case
        binary = np.column_stack([1 - proba[:, 0], proba[:, 0]])
        per_label = cleanlab.filter.find_label_issues(y[:, 0], binary, n_jobs=1)[:, None]
        score = cleanlab.rank.get_label_quality_scores(y[:, 0], binary, adjust_pred_probs=True)
    else:
        given_columns = [list(np.flatnonzero(row)) for row in y]
        per_label = cleanlab.multilabel_classification.filter.find_multilabel_issues_per_class(given_columns, proba, n_jobs=1)
        # adjusted: each label's probabilities less its confident threshold, so that rare labels'
        # low probabilities do not rank every message that has one first (NLU++: 0.21 -> 0.56 of
        # the messages with a dropped positive found at k)
        score = cleanlab.multilabel_classification.rank.get_label_quality_scores(given_columns, proba, adjust_pred_probs=True)
    # cleanlab's confident threshold of a label is its mean probability on its own annotations,
    # which a confident model puts near 1, so it flags few missed labels: the suggestion also
    # takes the model's side where its probability is on the other side of 0.5.
    suspect = per_label | ((proba >= 0.5) != (y == 1))
    suggested = [_leaves(labels, space) for labels in space.decode(np.where(suspect, 1 - y, y))]
    given = [set(space.closure(labels)) for labels in label_sets]
    closed = [set(space.closure(labels)) for labels in suggested]
    missing = [tuple(sorted(s - g)) for s, g in zip(closed, given)]
    extra = [tuple(sorted(g - s)) for s, g in zip(closed, given)]
    return per_label.any(axis=1), score, suggested, missing, extra


def _require_cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.multilabel_classification.filter
        import cleanlab.multilabel_classification.rank
        import cleanlab.rank
    except ImportError:
        raise TextdistillError(
            "checking labels needs cleanlab, which is not installed. Install the refine extra: pip install 'textdistill[refine]'."
        ) from None
    return cleanlab


def _folds(messages: MessageSet, space: LabelSpace, folds: int, seed: int) -> np.ndarray:
    """Each message's fold (n,): stratified by label, seeded."""
    n = len(messages)
    if folds < 2:
        raise TextdistillError(f"folds is {folds}: cross-validation needs at least 2 (--folds).")
    if n < folds:
        raise DataError(
            f"{n} annotated messages are too few for {folds}-fold cross-validation",
            file=messages.source,
            hint=f"annotate at least {folds} messages, or pass fewer --folds",
        )
    positions = np.zeros((n, 1))
    if space.multi_label and len(space) > 1:
        splits = MultilabelStratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(positions, space.encode(messages.labels))
    else:  # one class per message, or one label column (the label or its absence): plain stratification
        y = space.encode(messages.labels)[:, 0] if space.multi_label else space.encode_single(messages.labels)
        if np.bincount(y).max() < folds:
            raise DataError(
                f"no label has {folds} annotated messages, which {folds}-fold cross-validation needs",
                file=messages.source,
                column=messages.label_column,
                hint="annotate more messages, or pass fewer --folds",
            )
        with warnings.catch_warnings():
            # "The least populated class has only N members": reported by _unseen_label_warnings
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(positions, y))
    fold_of = np.empty(n, dtype=np.int64)
    for fold, (_, held_out) in enumerate(splits):
        fold_of[held_out] = fold
    return fold_of


def _unseen_label_warnings(label_sets: Sequence[Sequence[str]], space: LabelSpace, fold_of: np.ndarray) -> list[str]:
    """A warning for the labels annotated on held-out messages that their fold's model never saw."""
    unseen: Counter[str] = Counter()
    for fold in np.unique(fold_of):
        seen = {label for i in np.flatnonzero(fold_of != fold) for label in space.closure(label_sets[i])}
        for i in np.flatnonzero(fold_of == fold):
            unseen.update(label for label in space.closure(label_sets[i]) if label not in seen)
    if not unseen:
        return []
    listed = ", ".join(f"{label!r} ({count})" for label, count in sorted(unseen.items()))
    return [
        f"{sum(unseen.values())} annotations use a label that their fold's model never saw, as it has too few "
        f"annotated messages: {listed}. The model gives them probability 0, so they rank as suspect (a label used "
        "once is often a typo); annotate more messages of these labels, or fix them."
    ]


def _column_map(fold_space: LabelSpace, space: LabelSpace) -> np.ndarray:
    return np.array([space.index(label) for label in fold_space.labels], dtype=np.int64)


def _tfidf_proba(texts: list[str], label_sets: Sequence[tuple[str, ...]], space: LabelSpace, fold_of: np.ndarray) -> np.ndarray:
    """Out-of-sample probabilities (n, L) of the TF-IDF baseline, refit per fold."""
    from textdistill.models.baseline import BaselineConfig, TfidfBaseline

    # Multi-label: a rare label's positives weigh more, so a missed rare label's probability
    # stands out (on NLU++ with 5 % of the positives dropped, 0.56 -> 0.65 of them found at k).
    config = BaselineConfig(multi_label_loss="balanced" if space.multi_label else "bce")
    proba = np.zeros((len(texts), len(space)))
    for fold in track(range(fold_of.max() + 1), "Checking labels: TF-IDF per fold"):
        train, held_out = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
        model = TfidfBaseline(config).fit(
            [texts[i] for i in train], [label_sets[i] for i in train], multi_label=space.multi_label, hierarchy_sep=space.hierarchy_sep
        )
        columns = _column_map(model.label_space, space)
        proba[np.ix_(held_out, columns)] = model.predict_proba([texts[i] for i in held_out])
    return proba


def _teacher_features(model_dir: Path, texts: list[str]) -> np.ndarray:
    """The frozen pooled encoder features (n, hidden) of the transformer saved in ``model_dir``."""
    from textdistill.models.base import load_model

    model = load_model(model_dir)
    if model.kind != "transformer":
        raise ModelError(
            f"is a {model.kind} model; checking labels reads the frozen encoder features of a transformer teacher.",
            file=model_dir,
            hint="pass --model tfidf (the TF-IDF baseline, refit per fold), or the directory of a teacher that `textdistill teach` wrote.",
        )
    from textdistill.training.probe import pooled_features

    return pooled_features(model, texts, "Checking labels: encoding")


def _head_proba(x: np.ndarray, label_sets: Sequence[tuple[str, ...]], space: LabelSpace, fold_of: np.ndarray) -> np.ndarray:
    """Out-of-sample probabilities (n, L) of a logistic-regression head on frozen features ``x``,
    refit per fold (the linear probe's head fitting)."""
    from textdistill.training.probe import fit_head

    proba = np.zeros((len(x), len(space)))
    y = space.encode(label_sets) if space.multi_label else space.encode_single(label_sets)
    for fold in track(range(fold_of.max() + 1), "Checking labels: head per fold"):
        train, held_out = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
        weights, bias = fit_head(space, x[train], y[train], HEAD_C)
        logits = x[held_out] @ weights.T + bias
        if space.multi_label:
            proba[held_out] = expit(logits)
        else:  # one row per class the fold's training part has (LogisticRegression's classes_, sorted)
            proba[np.ix_(held_out, np.unique(y[train]))] = softmax(logits, axis=1)
    return proba


def _leaves(labels: Sequence[str], space: LabelSpace) -> tuple[str, ...]:
    """The labels that are no other label's ancestor: what an annotator writes, as the loader
    adds the ancestors back."""
    implied = {a for label in labels for a in space.closure([label]) if a != label}
    return tuple(label for label in labels if label not in implied)
