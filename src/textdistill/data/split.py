"""Seeded, stratified train/validation splits.

Single-label data is stratified by label; multi-label data by iterative stratification
(Sechidis et al. 2011, via ``iterative-stratification``) so rare labels reach both sides.
"""

from __future__ import annotations

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from sklearn.model_selection import train_test_split

from textdistill.data.labels import LabelSpace
from textdistill.data.messages import MessageSet
from textdistill.errors import DataError


def train_validation_split(messages: MessageSet, fraction: float = 0.1, seed: int = 0) -> tuple[MessageSet, MessageSet]:
    """Split annotated messages into (train, validation).

    In single-label data, a label with a single message cannot be in both parts; it stays in
    train.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be between 0 and 1, not {fraction}")
    n = len(messages)
    n_validation = int(round(n * fraction))
    if n_validation < 1 or n - n_validation < 2:
        raise DataError(
            f"{n} annotated messages are too few for a {fraction:.0%} validation split",
            file=messages.source,
            hint="add messages, or give a separate validation file",
        )
    positions = np.arange(n)
    if messages.multi_label:
        space = LabelSpace.from_label_sets(messages.labels, True, messages.hierarchy_sep)
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_validation, random_state=seed)
        train_idx, val_idx = next(splitter.split(positions.reshape(-1, 1), space.encode(messages.labels)))
    else:
        labels = np.array([labels[0] for labels in messages.labels])
        values, counts = np.unique(labels, return_counts=True)
        singletons = np.isin(labels, values[counts < 2])
        rest = positions[~singletons]
        n_classes = len(np.unique(labels[rest]))
        stratify = labels[rest] if n_validation >= n_classes and len(rest) - n_validation >= n_classes else None
        train_idx, val_idx = train_test_split(rest, test_size=n_validation, random_state=seed, stratify=stratify)
        train_idx = np.concatenate([train_idx, positions[singletons]])
    return messages.subset(sorted(train_idx.tolist())), messages.subset(sorted(val_idx.tolist()))
