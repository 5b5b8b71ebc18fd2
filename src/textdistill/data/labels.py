"""Label spaces: single-label, multi-label and hierarchical (``Parent > Child``) labels.

A hierarchical label implies its ancestors. In multi-label data the ancestors become labels of
their own (the ancestor closure), so the training targets of ``Billing > Refund`` mark
``Billing`` too, a model predicts ``Billing`` with ``Billing > Refund``, and a parent's
confidence is never below a descendant's (the model's own per-label sigmoids may put a child
above its parent). A parent is predicted on evidence only: its own probability at its threshold,
or a predicted descendant. In single-label data a message has exactly one leaf path, and a
parent's probability is the sum of its children's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_HIERARCHY_SEP = " > "


def split_path(label: str, sep: str | None) -> list[str]:
    if not sep or sep not in label:
        return [label]
    return [part.strip() for part in label.split(sep)]


def truncate(label: str, level: int, sep: str | None) -> str:
    """The ancestor of ``label`` at depth ``level`` (1 = top); shallower labels stay as they are."""
    parts = split_path(label, sep)
    return (sep or "").join(parts[:level])


def ancestors(label: str, sep: str | None) -> list[str]:
    """Proper ancestors of ``label``, top first: ``A > B > C`` -> ``[A, A > B]``."""
    parts = split_path(label, sep)
    return [(sep or "").join(parts[:k]) for k in range(1, len(parts))]


def normalise(label: str, sep: str | None) -> str:
    """Canonical spelling of a label path: ``A>B`` and ``A >  B`` read the same as ``A > B``."""
    label = label.strip()
    if not sep:
        return label
    bare = sep.strip()
    if bare and bare in label:
        return sep.join(part.strip() for part in label.split(bare))
    return label


def deepest_first(parents: np.ndarray) -> np.ndarray:
    """Label columns ordered so that every label comes before its parent (``parents[j]``: the
    column of label j's parent, -1 for none)."""
    parents = np.asarray(parents)
    depth = np.zeros(len(parents), dtype=np.int64)
    for j in range(len(parents)):
        k = parents[j]
        while k >= 0:
            depth[j] += 1
            k = parents[k]
    return np.argsort(-depth, kind="stable")


def raise_to_descendants(proba: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Probabilities (n, L) with each label's raised to the highest of its descendants'."""
    raised = np.array(proba, copy=True)
    # deepest labels first, each into its parent: a grandparent then sees its grandchildren too
    for child in deepest_first(parents):
        parent = parents[child]
        if parent >= 0:
            np.maximum(raised[:, parent], raised[:, child], out=raised[:, parent])
    return raised


@dataclass(frozen=True)
class LabelSpace:
    """The ordered labels a model predicts, and how they relate."""

    labels: tuple[str, ...]
    multi_label: bool
    hierarchy_sep: str | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {label: i for i, label in enumerate(self.labels)})

    @classmethod
    def from_label_sets(
        cls,
        label_sets: Iterable[Sequence[str]],
        multi_label: bool,
        hierarchy_sep: str | None = DEFAULT_HIERARCHY_SEP,
    ) -> LabelSpace:
        seen: set[str] = set()
        for labels in label_sets:
            seen.update(labels)
        hierarchical = bool(hierarchy_sep) and any(hierarchy_sep in label for label in seen)
        sep = hierarchy_sep if hierarchical else None
        if multi_label and sep:
            seen.update(a for label in list(seen) for a in ancestors(label, sep))
        return cls(tuple(sorted(seen)), multi_label, sep)

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def index(self, label: str) -> int:
        return self._index[label]

    @property
    def hierarchical(self) -> bool:
        return self.hierarchy_sep is not None

    @property
    def depth(self) -> int:
        return max((len(split_path(label, self.hierarchy_sep)) for label in self.labels), default=0)

    def closure(self, labels: Iterable[str]) -> tuple[str, ...]:
        """The labels with all their ancestors, sorted."""
        closed = set(labels)
        if self.hierarchy_sep:
            closed.update(a for label in list(closed) for a in ancestors(label, self.hierarchy_sep))
        return tuple(sorted(closed))

    def encode(self, label_sets: Sequence[Sequence[str]]) -> np.ndarray:
        """Binary indicator matrix (n, L); multi-label sets are closed under ancestors first."""
        y = np.zeros((len(label_sets), len(self.labels)), dtype=np.int8)
        for row, labels in enumerate(label_sets):
            if self.multi_label:
                labels = self.closure(labels)
            for label in labels:
                y[row, self._index[label]] = 1
        return y

    def encode_single(self, label_sets: Sequence[Sequence[str]]) -> np.ndarray:
        """Class indices (n,) for single-label data."""
        return np.array([self._index[labels[0]] for labels in label_sets], dtype=np.int64)

    def decode(self, indicators: np.ndarray) -> list[tuple[str, ...]]:
        """Label sets from a binary (n, L) matrix, closed under ancestors."""
        return [
            self.closure(self.labels[j] for j in np.flatnonzero(row)) for row in np.asarray(indicators)
        ]

    def parent_indices(self) -> np.ndarray:
        """(L,) the column of each label's nearest ancestor among the labels, -1 for none; all -1
        unless the space is multi-label and hierarchical (only there are parents labels)."""
        parents = np.full(len(self.labels), -1, dtype=np.int64)
        if self.multi_label and self.hierarchy_sep:
            for j, label in enumerate(self.labels):
                present = [self._index[a] for a in ancestors(label, self.hierarchy_sep) if a in self._index]
                if present:
                    parents[j] = present[-1]
        return parents

    def consistent(self, proba: np.ndarray) -> np.ndarray:
        """Multi-label hierarchical probabilities (n, L) with each label's raised to the highest of
        its descendants' (a message is ``Shipping`` at least as surely as ``Shipping > Damaged``);
        anything else as it is."""
        proba = np.asarray(proba)
        if not (self.multi_label and self.hierarchy_sep):
            return proba
        return raise_to_descendants(proba, self.parent_indices())

    def predict(self, proba: np.ndarray, thresholds: np.ndarray | None) -> list[tuple[str, ...]]:
        """Predicted label sets from probabilities (n, L): the one rule of every model and command.

        Single-label: the most probable label. Multi-label: every label whose own probability
        reaches its threshold, with its ancestors. So a predicted child always comes with its
        parent, and a parent comes on evidence only: its own probability, or a descendant that
        reaches the descendant's threshold (a child scoring 0.7 against a threshold of 0.9 does
        not make its parent, whose threshold is 0.6, a prediction).
        """
        proba = np.asarray(proba)
        if not self.multi_label:
            return [(self.labels[j],) for j in proba.argmax(axis=1)]
        return self.decode(proba >= np.asarray(thresholds))

    def confidences(self, proba_row: np.ndarray) -> dict[str, float]:
        """Each label's confidence for one message, consistent with the hierarchy: in single-label
        hierarchies a parent's is the sum of its children's (it is not a label of its own), in
        multi-label ones the :meth:`consistent` probability (at least its highest descendant's)."""
        row = np.asarray(proba_row, dtype=np.float64)
        scores = {label: float(p) for label, p in zip(self.labels, self.consistent(row[None, :])[0])}
        if self.hierarchy_sep and not self.multi_label:
            for label, p in zip(self.labels, row):
                for parent in ancestors(label, self.hierarchy_sep):
                    scores[parent] = scores.get(parent, 0.0) + float(p)
        return scores

    def at_level(self, labels: Iterable[str], level: int) -> tuple[str, ...]:
        """The labels' ancestors at depth ``level``; labels shallower than that have none."""
        return tuple(
            sorted(
                {
                    truncate(label, level, self.hierarchy_sep)
                    for label in labels
                    if len(split_path(label, self.hierarchy_sep)) >= level
                }
            )
        )

    def to_json(self) -> dict:
        return {"labels": list(self.labels), "multi_label": self.multi_label, "hierarchy_sep": self.hierarchy_sep}

    @classmethod
    def from_json(cls, data: dict) -> LabelSpace:
        return cls(tuple(data["labels"]), bool(data["multi_label"]), data.get("hierarchy_sep"))
