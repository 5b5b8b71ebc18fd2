"""From annotated messages to a saved model: the steps the CLI and the pipeline share."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

from textdistill.data.labels import LabelSpace
from textdistill.data.messages import DataSpec, MessageSet
from textdistill.errors import DataError
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
    require_known_labels(validation, train)
    return model.fit(
        train.texts,
        train.labels,
        multi_label=bool(train.multi_label),
        hierarchy_sep=train.hierarchy_sep,
        validation=(validation.texts, validation.labels),
        threshold_mode=threshold_mode,  # type: ignore[arg-type]
    )


def require_known_labels(validation: MessageSet, train: MessageSet) -> None:
    """Validation labels must be labels the model learns (a training label or an ancestor of one),
    else the validation scores cannot be computed: refuse before training, naming the rows."""
    known = set(LabelSpace.from_label_sets(train.labels, bool(train.multi_label), train.hierarchy_sep).labels)
    unknown = [(row, sorted(set(labels) - known)) for row, labels in zip(validation.rows, validation.label_sets) if labels and set(labels) - known]
    if not unknown:
        return
    names = sorted({label for _, labels in unknown for label in labels})
    raise DataError(
        f"{len(unknown)} validation message(s) carry labels that no training message has: {', '.join(map(repr, names[:5]))}"
        + (f" and {len(names) - 5} more" if len(names) > 5 else ""),
        file=validation.source,
        row=unknown[0][0],
        column=validation.label_column,
        hint="add training messages with these labels, or correct or remove those validation rows"
        f" (rows {', '.join(str(row) for row, _ in unknown[:5])}{' ...' if len(unknown) > 5 else ''})",
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
