"""From teachers and a transfer set to a saved student: the steps the CLI and the pipeline share.

The student trains on every transfer-set message (the teachers' soft targets) plus the annotated
messages (their labels and the teachers' soft targets). Validation messages are held out:
transfer rows with a validation message's text are dropped, so early stopping and thresholds
are chosen on messages no model has learnt from.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.data.messages import MessageSet
from textdistill.distill.teachers import combine, ensemble_logits, label_columns, score_texts
from textdistill.errors import TextdistillError
from textdistill.models.base import MANIFEST_FILE, TextClassifier
from textdistill.models.manifest import Manifest, data_fingerprint
from textdistill.models.thresholds import check_threshold_mode
from textdistill.training.arguments import TrainingArguments
from textdistill.transfer.store import TransferSet

STUDENT_KINDS = ("static", "bilstm", "transformer")

# Per kind, the loss terms used when none are configured: soft targets at T = 2 mixed with the
# labels where known (Hinton et al.); logit regression for a single-label BiLSTM (Tang et al.).
DEFAULT_LOSSES: dict[str, list[dict[str, Any]]] = {
    "static": [{"name": "kd", "weight": 0.7, "temperature": 2.0}, {"name": "ce", "weight": 0.3}],
    "bilstm": [{"name": "logit_mse", "weight": 1.0}, {"name": "ce", "weight": 0.1}],
    "transformer": [{"name": "kd", "weight": 0.7, "temperature": 2.0}, {"name": "ce", "weight": 0.3}],
}
# Multi-label, the BiLSTM matches the teacher's sigmoids (per-label BCE) instead: its logits for
# absent labels are large and negative, and regressing them taught the demo's BiLSTM the label
# priors only (validation micro-F1 0.0 after 3 epochs, against 0.77 with BCE).
MULTI_LABEL_LOSSES: dict[str, list[dict[str, Any]]] = {
    "bilstm": [{"name": "kd", "weight": 0.7, "temperature": 1.0}, {"name": "ce", "weight": 0.3}],
}


def default_losses(kind: str, multi_label: bool) -> list[dict[str, Any]]:
    """The loss terms of ``kind`` when none are configured."""
    return (MULTI_LABEL_LOSSES.get(kind) if multi_label else None) or DEFAULT_LOSSES[kind]


def with_label_loss(losses: list[dict[str, Any]], multi_label_loss: str) -> list[dict[str, Any]]:
    """The loss terms with each ``ce`` term on the student's multi-label loss (its training
    argument ``multi_label_loss``) unless the term names its own."""
    return [{"multi_label_loss": multi_label_loss, **term} if term["name"] == "ce" else term for term in losses]


@dataclass
class StudentSpec:
    """One student to distil: its kind, its own settings, losses and training arguments
    (``None`` for the kind's defaults)."""

    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    losses: list[dict[str, Any]] | None = None
    training: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in STUDENT_KINDS:
            raise TextdistillError(f"unknown student kind {self.kind!r}; the kinds are: {', '.join(STUDENT_KINDS)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudentSpec:
        data = dict(data)
        kind = data.pop("kind", None)
        if kind is None:
            raise TextdistillError(f"a student needs a kind ({', '.join(STUDENT_KINDS)})")
        losses, training = data.pop("losses", None), data.pop("training", {})
        return cls(kind, data, losses, training)


@dataclass
class DistillationData:
    texts: list[str]
    label_sets: list[tuple[str, ...] | None]  # None: unannotated
    teacher_logits: np.ndarray

    @property
    def n_annotated(self) -> int:
        return sum(labels is not None for labels in self.label_sets)


def distillation_data(
    teachers: Sequence[str | Path],
    transfer_dirs: Sequence[str | Path],
    train: MessageSet | None,
    validation: MessageSet | None,
    teacher_weights: Sequence[float] | None = None,
) -> DistillationData:
    """Transfer messages with their soft targets, annotated messages with labels attached (scored
    by the teachers when no transfer set has them), validation texts removed.

    Several transfer sets (say, more augmented copies labelled later) are joined in order; a text
    found in more than one is kept once, from the first."""
    if not transfer_dirs:
        raise TextdistillError("give at least one transfer set (--transfer DIR)")
    sets = [TransferSet.load(path) for path in transfer_dirs]
    first = sets[0]
    held_out = set(validation.texts) if validation is not None else set()
    labelled = {}
    if train is not None:
        for text, labels in zip(train.texts, train.labels):
            labelled.setdefault(text, labels)
    texts: list[str] = []
    label_sets: list[tuple[str, ...] | None] = []
    parts = []
    seen = set(held_out)
    for transfer_dir, transfer in zip(transfer_dirs, sets):
        columns = _label_columns(first, transfer, transfer_dir)
        rows = []
        for i, text in enumerate(transfer.texts):
            if text not in seen:
                seen.add(text)
                texts.append(text)
                label_sets.append(labelled.get(text))
                rows.append(i)
        parts.append(ensemble_logits(teachers, transfer, transfer_dir, teacher_weights)[rows][:, columns])
    missing = [text for text in labelled if text not in seen]
    if missing:
        scored = [score_texts(t, missing, first.labels, transfer_dirs[0]) for t in teachers]
        parts.append(combine(scored, teacher_weights, first.multi_label))
        texts += missing
        label_sets += [labelled[text] for text in missing]
    return DistillationData(texts, label_sets, np.concatenate(parts))


def _label_columns(first: TransferSet, other: TransferSet, other_dir: str | Path) -> np.ndarray:
    """Columns of ``other``'s logits in ``first``'s label order; the label sets and kinds must match."""
    hint = "Join only transfer sets labelled for the same task."
    if other.multi_label != first.multi_label:
        raise TextdistillError(f"transfer set {other_dir} is {'multi' if other.multi_label else 'single'}-label, unlike the first transfer set. {hint}")
    return label_columns(other.labels, first.labels, f"transfer set {other_dir}", "the first transfer set", hint)


def make_student(spec: StudentSpec, teacher_dir: str | Path, work_dir: str | Path) -> TextClassifier:
    """A new, untrained student of ``spec.kind`` that starts from ``teacher_dir`` where it can."""
    settings = dict(spec.settings)
    if spec.kind == "static":
        from textdistill.students.static import StaticConfig, StaticStudent

        settings.setdefault("init_from", str(teacher_dir))
        training = _training(StaticStudent.default_training(settings.get("embeddings", "teacher")), spec.training)
        return StaticStudent(StaticConfig.from_dict(settings), training=training)
    if spec.kind == "bilstm":
        from textdistill.students.bilstm import BiLSTMConfig, BiLSTMStudent

        settings.setdefault("init_from", str(teacher_dir))
        training = _training(BiLSTMStudent.default_training(), spec.training)
        return BiLSTMStudent(BiLSTMConfig.from_dict(settings), training=training)
    from textdistill.models.transformer import TransformerClassifier
    from textdistill.students.transformer import TEACHER_LAYERS, student_config, teacher_layer_encoder

    teacher_config = Manifest.read(Path(teacher_dir) / MANIFEST_FILE).config.get("encoder", {})
    encoder = settings.pop("encoder", TEACHER_LAYERS)
    layers = settings.pop("layers", None)
    if encoder == TEACHER_LAYERS:
        encoder = str(teacher_layer_encoder(teacher_dir, Path(work_dir) / "init-encoder", layers))
    config = student_config(teacher_config, settings, encoder)
    defaults = TrainingArguments(epochs=4, min_steps=3000, learning_rate=1e-4, head_learning_rate=1e-3, early_stopping_patience=2)
    return TransformerClassifier(config, training=_training(defaults, spec.training))


def distill(
    spec: StudentSpec,
    *,
    teachers: Sequence[str | Path],
    transfer_dirs: Sequence[str | Path],
    out_dir: str | Path,
    train: MessageSet | None = None,
    validation: MessageSet | None = None,
    teacher_weights: Sequence[float] | None = None,
    threshold_mode: str = "global",
    spec_data: Mapping[str, Any] | None = None,
) -> TextClassifier:
    """Distil one student from the teachers' soft targets on one or more transfer sets and save
    it to ``out_dir``. With no ``transfer_dirs``, train the same student on ``train``'s labels
    alone (the control that shows what distillation adds); the teacher then only initialises it.

    ``spec_data`` are the data settings recorded with the student (how to read its messages);
    by default the first teacher's."""
    from textdistill.distill.trainer import STATE_LOSSES, DistillationTrainer

    if not teachers:
        raise TextdistillError("give at least one teacher (--teacher DIR)")
    check_threshold_mode(threshold_mode)  # before training, not after it
    out_dir = Path(out_dir)
    started = time.perf_counter()
    student = make_student(spec, teachers[0], out_dir)
    teacher_manifest = Manifest.read(Path(teachers[0]) / MANIFEST_FILE)
    data_settings = dict(spec_data) if spec_data is not None else teacher_manifest.config.get("data", {})
    if not transfer_dirs:
        return _labels_only(student, train, validation, out_dir, spec, teachers[0], data_settings, threshold_mode, started)
    data = distillation_data(teachers, transfer_dirs, train, validation, teacher_weights)
    student.label_space = teacher_manifest.label_space
    losses = spec.losses if spec.losses is not None else default_losses(spec.kind, student.label_space.multi_label)
    if student.label_space.multi_label:
        losses = with_label_loss(losses, student.training.multi_label_loss)
    needs_teacher = any(term["name"] in STATE_LOSSES for term in losses)
    teacher = None
    if needs_teacher:
        from textdistill.models.base import load_model

        teacher = load_model(teachers[0])
    trainer = DistillationTrainer(losses, student.training, out_dir / "checkpoint", teacher=teacher)
    held_out = (validation.texts, validation.labels) if validation is not None and len(validation) else None
    student.history = trainer.train(student, data.texts, data.label_sets, held_out, teacher_logits=data.teacher_logits)
    student.tune_thresholds(held_out, threshold_mode)  # type: ignore[arg-type]
    distillation = {
        "kind": spec.kind,
        "teachers": [str(Path(t).resolve()) for t in teachers],
        "teacher_weights": list(teacher_weights) if teacher_weights else None,
        "transfer": [str(Path(path).resolve()) for path in transfer_dirs],
        "losses": losses,
        "n_messages": len(data.texts),
        "n_annotated": data.n_annotated,
        "seconds": round(time.perf_counter() - started, 1),
    }
    fingerprint = data_fingerprint(data.texts, [s or () for s in data.label_sets], ",".join(map(str, transfer_dirs)))
    student.save(out_dir, config={"data": data_settings, "distillation": distillation}, training_data=fingerprint)
    shutil.rmtree(out_dir / "checkpoint", ignore_errors=True)
    return student


def _labels_only(student, train, validation, out_dir, spec, teacher_dir, data_settings, threshold_mode, started) -> TextClassifier:
    """The control experiment: the same student (same initialisation) trained on the annotated
    messages alone, with no soft targets."""
    from textdistill.training.recipes import fit_messages

    if train is None or not len(train):
        raise TextdistillError("without a transfer set the student learns from labels alone: give --train with annotated messages")
    if spec.losses is not None:
        raise TextdistillError("loss terms need a transfer set (--transfer); without one the student trains on the labels with cross-entropy")
    student.checkpoint_dir = out_dir / "checkpoint"
    fit_messages(student, train, validation, threshold_mode)
    distillation = {"kind": spec.kind, "teachers": [str(Path(teacher_dir).resolve())], "transfer": None, "losses": None,
                    "n_messages": len(train), "n_annotated": len(train), "seconds": round(time.perf_counter() - started, 1)}
    student.save(out_dir, config={"data": data_settings, "distillation": distillation}, training_data=data_fingerprint(train.texts, train.labels, train.source))
    shutil.rmtree(out_dir / "checkpoint", ignore_errors=True)
    return student


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, booleans, lists, maps), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_setting(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise TextdistillError(f"setting {text!r} should look like key=value, e.g. dim=128")
    return key.strip(), parse_value(value.strip())


def parse_loss_term(text: str) -> dict[str, Any]:
    """``name[:weight[:key=value,...]]``, e.g. ``kd:0.7:temperature=2`` or ``tinybert_hidden:1:layer_map={"1":4}``."""
    name, _, rest = text.partition(":")
    weight, _, params = rest.partition(":")
    term: dict[str, Any] = {"name": name.strip()}
    if weight.strip():
        try:
            term["weight"] = float(weight)
        except ValueError:
            raise TextdistillError(f"loss {text!r}: the weight {weight!r} is not a number (format: name:weight:key=value,...)") from None
    for item in filter(None, (p.strip() for p in params.split(",") if params)):
        key, value = parse_setting(item)
        term[key] = value
    return term


def _training(defaults: TrainingArguments, overrides: Mapping[str, Any]) -> TrainingArguments:
    """The kind's defaults with ``overrides``; epochs given without ``min_steps`` are trained as
    given (the kind's step floor applies only to its default epochs)."""
    unknown = set(overrides) - set(TrainingArguments.__dataclass_fields__)
    if unknown:
        raise TextdistillError(f"unknown training setting(s) {sorted(unknown)}; the settings are: {', '.join(TrainingArguments.__dataclass_fields__)}")
    if "epochs" in overrides and "min_steps" not in overrides:
        overrides = {**overrides, "min_steps": 0}
    return replace(defaults, **overrides)
