"""From annotated messages to a saved model: the steps the CLI and the pipeline share."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from textdistill.data.messages import DataSpec, MessageSet
from textdistill.models.base import TextClassifier
from textdistill.models.baseline import BaselineConfig, TfidfBaseline
from textdistill.models.manifest import data_fingerprint


def fit_and_save(
    model: TextClassifier,
    train: MessageSet,
    validation: MessageSet,
    directory: str | Path,
    *,
    spec: DataSpec,
    threshold_mode: str = "global",
    metrics: dict | None = None,
) -> Path:
    """Fit on ``train`` and save with a manifest that records the data settings and the
    training data's hash."""
    fit_messages(model, train, validation, threshold_mode)
    return save_trained(model, directory, train, spec, metrics)


def fit_messages(model: TextClassifier, train: MessageSet, validation: MessageSet, threshold_mode: str = "global") -> TextClassifier:
    """Fit on annotated messages; validation serves early stopping and multi-label thresholds."""
    return model.fit(
        train.texts,
        train.labels,
        multi_label=bool(train.multi_label),
        hierarchy_sep=train.hierarchy_sep,
        validation=(validation.texts, validation.labels),
        threshold_mode=threshold_mode,  # type: ignore[arg-type]
    )


def save_trained(model: TextClassifier, directory: str | Path, train: MessageSet, spec: DataSpec, metrics: dict | None = None) -> Path:
    return model.save(
        directory,
        config={"data": {**asdict(spec), "text_columns": list(spec.text_columns)}},
        training_data={
            **data_fingerprint(train.texts, train.labels, train.source),
            "skipped_rows": len(train.skipped),
            "skipped": [asdict(row) for row in train.skipped],  # every row --skip-bad-rows left out, and why
        },
        metrics=metrics,
    )


def train_baseline(config: BaselineConfig, train: MessageSet, validation: MessageSet, directory: str | Path, *, spec: DataSpec, threshold_mode: str = "global") -> TfidfBaseline:
    model = TfidfBaseline(config)
    fit_and_save(model, train, validation, directory, spec=spec, threshold_mode=threshold_mode)
    return model


def train_teacher(teacher, train: MessageSet, validation: MessageSet, directory: str | Path, *, spec: DataSpec, threshold_mode: str = "global"):
    """Fine-tune, compare with the TF-IDF baseline on validation (warning when not better),
    save, and drop the checkpoint that made an interrupted run resumable."""
    from textdistill.training.compare import compare_with_baseline

    directory = Path(directory)
    teacher.checkpoint_dir = directory / "checkpoint"
    fit_messages(teacher, train, validation, threshold_mode)
    comparison = compare_with_baseline(teacher, (train.texts, train.labels), (validation.texts, validation.labels))
    save_trained(teacher, directory, train, spec, metrics={"validation": comparison})
    shutil.rmtree(directory / "checkpoint", ignore_errors=True)
    return teacher
