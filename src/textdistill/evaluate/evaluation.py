"""Evaluate a saved model on annotated messages: quality and cost in one JSON document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import softmax

from textdistill.data.messages import MessageSet, SkippedRow, text_cleaning
from textdistill.errors import DataError
from textdistill.evaluate.cost import CostSettings, machine_info, measure_cost
from textdistill.evaluate.metrics import choose_positive_label, quality_metrics
from textdistill.models.automation import measure_on, read_automation
from textdistill.models.base import TextClassifier, load_model
from textdistill.models.encoder_config import EncoderConfig
from textdistill.models.manifest import data_fingerprint, package_versions
from textdistill.models.out_of_scope import measure, read_out_of_scope
from textdistill.progress import track

if TYPE_CHECKING:
    from textdistill.students.early_exit import EarlyExitClassifier

PREDICT_BATCH_SIZE = 256


def predict_proba_batched(model: TextClassifier, texts: list[str], description: str = "Predicting") -> np.ndarray:
    """Probabilities (n, L), rows in ``texts`` order, predicted shortest first in batches of
    ``PREDICT_BATCH_SIZE``: messages of similar length share a batch, so a model that pads a
    batch to its longest message pads little, and one long email costs only its own batch."""
    return _length_batched(model.predict_proba, texts, description)


def decision_function_batched(model: TextClassifier, texts: list[str], description: str = "Predicting") -> np.ndarray:
    """Logits (n, L), batched as :func:`predict_proba_batched` batches."""
    return _length_batched(model.decision_function, texts, description)


def _length_batched(method, texts: list[str], description: str) -> np.ndarray:
    order = np.argsort([len(text) for text in texts], kind="stable")
    batches = [order[i : i + PREDICT_BATCH_SIZE] for i in range(0, len(texts), PREDICT_BATCH_SIZE)]
    in_length_order = np.concatenate([np.asarray(method([texts[i] for i in rows])) for rows in track(batches, description)])
    values = np.empty_like(in_length_order)
    values[order] = in_length_order
    return values


def drop_unknown_labels(messages: MessageSet, model: TextClassifier, skip_bad_rows: bool) -> MessageSet:
    """Test messages with a label the model never saw cannot be scored fairly: an error, or
    skipped (and counted) under ``skip_bad_rows``."""
    space = model.label_space
    unknown: dict[int, SkippedRow] = {}
    for i, labels in enumerate(messages.labels):
        missing = [label for label in labels if label not in space]
        if not missing:
            continue
        problem = f"label {missing[0]!r} was never seen in training"
        if not skip_bad_rows:
            raise DataError(
                problem,
                file=messages.source,
                row=messages.rows[i],
                column=messages.label_column,
                hint="retrain with examples of this label, fix the label, or pass --skip-bad-rows to leave such messages out",
            )
        unknown[i] = SkippedRow(messages.source, messages.rows[i], messages.label_column, problem)
    if unknown and len(unknown) == len(messages):
        raise DataError(
            f"no messages are left to evaluate: all {len(unknown)} have a label the model never saw in training "
            f"(e.g. row {messages.rows[0]}: {unknown[0].problem})",
            file=messages.source,
            column=messages.label_column,
            hint="evaluate on data with the model's labels (see its manifest.json), or check that the right label column is used",
        )
    return messages.drop_rows(set(unknown), unknown) if unknown else messages


def evaluate_model(
    model_dir: str | Path,
    messages: MessageSet,
    *,
    name: str | None = None,
    skip_bad_rows: bool = False,
    cost: CostSettings = CostSettings(),
    positive_label: str | None = None,
    pool: MessageSet | None = None,
    annotated: MessageSet | None = None,
) -> dict:
    """Quality and cost of the model saved in ``model_dir`` on annotated ``messages``.

    ``positive_label`` names the positive class of a two-class model (default: the rarer class
    in ``messages``); a label the model lacks, or one given for a model that is not two-class,
    is refused before the model predicts. A model with automation thresholds (``textdistill
    automate``) gets an ``automation`` block: per label, what its threshold gives on ``messages``
    (:func:`~textdistill.models.automation.measure_on`); None without. A model with a reject
    option (``textdistill reject``) gets an ``out_of_scope`` block: what its threshold rejects of
    ``messages`` (all in scope) and the accuracy that costs. Quality metrics are the model's
    own, without either. With unannotated ``pool``
    messages it gets a ``rating`` block (:mod:`textdistill.refine.rating`: coverage on the pool,
    average precision on ``messages``, balance against the ``annotated`` messages when given).
    """
    model_dir = Path(model_dir)
    model = load_model(model_dir)
    automation = read_automation(model_dir, model.manifest)
    out_of_scope = read_out_of_scope(model_dir, model.manifest)
    messages = drop_unknown_labels(messages.annotated(), model, skip_bad_rows)
    positive = choose_positive_label(model.label_space, messages.labels, positive_label)
    space = model.label_space
    if out_of_scope is None:
        proba = predict_proba_batched(model, messages.texts, f"Evaluating {name or model_dir.name}")
    else:  # the score needs logits; their softmax is the model's probabilities
        logits = decision_function_batched(model, messages.texts, f"Evaluating {name or model_dir.name}")
        proba = softmax(np.asarray(logits, dtype=np.float64), axis=1)
    predicted = model.predict_label_sets(messages.texts, proba)
    result = {
        "name": name or model_dir.name,
        "kind": model.kind,
        **model_role(model.kind, model.manifest.config),
        "model_dir": str(model_dir),
        "data": messages.source,
        "n_messages": len(messages),
        # same hash = same test messages in the same order, so per-message results can be paired
        "test_sha256": data_fingerprint(messages.texts, messages.labels, None)["sha256"],
        "train_messages": (model.manifest.training_data or {}).get("n_messages"),
        "multi_label": space.multi_label,
        "hierarchical": space.hierarchical,
        "long_messages": long_message_reading(model.manifest.config),
        **quality_metrics(space, messages.labels, predicted, proba, positive_label),
        "per_message": per_message_counts(space, messages.labels, predicted, positive),
        "thresholds": _thresholds(model),
        "automation": None if automation is None else measure_on(automation, space, proba, predicted, messages.labels),
        "out_of_scope": None if out_of_scope is None else _rejection(out_of_scope, logits, predicted, messages.labels),
        "skipped_rows": len(messages.skipped),
        "skipped": [{"file": s.file, "row": s.row, "column": s.column, "problem": s.problem} for s in messages.skipped],
        "text_cleaning": text_cleaning(messages),
    }
    if pool is not None:
        from textdistill.refine.rating import rate_model

        per_label_ap = {row["label"]: row["average_precision"] for row in result["per_label"]}
        result["rating"] = rate_model(model, model_dir, pool, annotated=annotated, per_label_ap=per_label_ap, ap_source=f"{messages.source} ({len(messages):,} messages)")
    if cost.measure:
        report = measure_cost(
            model,
            model_dir,
            messages.texts,
            threads=cost.threads,
            latency_samples=cost.latency_samples,
            warmup=cost.warmup,
            batch_size=cost.batch_size,
            min_messages=cost.min_messages,
            repeats=cost.repeats,
        )
        result.update(report.to_dict())
    else:
        result.update(dict.fromkeys(("latency_ms_p50", "latency_ms_p95", "latency_by_length", "throughput_per_s", "peak_rss_mb", "size_mb", "threads")))
        result["n_params"] = model.n_params
    if model.kind == "early_exit":
        result["early_exit"] = early_exit_summary(model, messages, threads=cost.threads)
    if compression := model.manifest.config.get("compression"):
        result["compression"] = {key: compression.get(key) for key in ("precision", "source", "source_kind")}
    if isinstance(check := (model.manifest.metrics or {}).get("validation"), dict):
        result["teacher_check"] = check
    result["machine"] = machine_info()
    result["versions"] = package_versions()
    return result


def model_role(kind: str, config: dict) -> dict:
    """What a model is in a distillation run, from its manifest: ``role`` (baseline, teacher,
    student, compressed or model), the name of a compressed copy's ``source`` or a student's
    ``teacher``, and a short ``description`` of the model."""
    if compression := config.get("compression"):
        source = Path(str(compression.get("source") or "?")).name
        return {"role": "compressed", "source": source, "description": f"{compression.get('precision')} ONNX copy of {source}"}
    if distillation := config.get("distillation"):
        teachers = distillation.get("teachers") or []
        teacher = Path(teachers[0]).name if teachers else None
        return {"role": "student", "teacher": teacher, "description": f"{kind} student"}
    if kind == "early_exit":
        return {"role": "student", "teacher": None, "description": "early-exit branches on a transformer (self-distilled)"}
    if kind == "baseline":
        return {"role": "baseline", "description": "TF-IDF + linear classifier"}
    if kind == "transformer":
        encoder = config.get("encoder") or {}
        return {"role": "teacher", "description": f"{encoder.get('model', 'transformer')}, {config.get('method') or encoder.get('method')} fine-tuning"}
    return {"role": "model", "description": kind}


def long_message_reading(config: dict) -> dict | None:
    """How a transformer (or its ONNX copy, or early exit on one) reads a message longer than
    its max_length tokens, from its manifest; None for models without an encoder."""
    encoder = config.get("encoder") or (config.get("source") or {}).get("encoder")
    return EncoderConfig.from_saved(encoder).long_message_settings() if isinstance(encoder, dict) else None


def headline_metric(multi_label: bool, positive_label: str | None) -> str:
    """The one number a practitioner compares models by: micro-F1 for multi-label data, the
    positive class's F1 for two-class data, else accuracy."""
    return "micro_f1" if multi_label else "positive_f1" if positive_label is not None else "accuracy"


def quality_summary(result: dict, digits: int = 3) -> str:
    """One line for the console: the headline metric first (accuracy is left out where it does
    not apply, for multi-label data), then macro-F1."""
    positive = result.get("positive_class")
    metric = headline_metric(bool(result.get("multi_label")), positive["label"] if positive else None)
    if metric == "positive_f1":
        first = f"positive class {positive['label']!r} F1 {positive['f1']:.{digits}f}"
    else:
        first = f"{'micro-F1' if metric == 'micro_f1' else 'accuracy'} {result[metric]:.{digits}f}"
    return f"{first}, macro-F1 {result['macro_f1']:.{digits}f}"


def per_message_counts(space, true_sets, pred_sets, positive_label: str | None) -> dict:
    """What the report's bootstrap intervals resample: for accuracy, each test message's ``correct``
    flag (a string of 0/1); for micro-F1 and positive-class F1, each message's ``tp``, ``fp`` and
    ``fn`` counts (digit strings, or space-separated when a count exceeds 9). The metric over any
    subset of messages is then the mean flag, or ``2 TP / (2 TP + FP + FN)``."""
    metric = headline_metric(space.multi_label, positive_label)
    y_true, y_pred = space.encode(true_sets), space.encode(pred_sets)
    if metric == "accuracy":
        return {"metric": metric, "correct": _digits(y_true.argmax(1) == y_pred.argmax(1))}
    if metric == "positive_f1":
        column = space.labels.index(positive_label)
        y_true, y_pred = y_true[:, [column]], y_pred[:, [column]]
    counts = {"tp": (y_true & y_pred).sum(1), "fp": (y_pred & (1 - y_true)).sum(1), "fn": (y_true & (1 - y_pred)).sum(1)}
    return {"metric": metric, **{key: _digits(value) for key, value in counts.items()}}


def _digits(counts: np.ndarray) -> str:
    counts = counts.astype(int).tolist()
    return ("" if max(counts, default=0) <= 9 else " ").join(map(str, counts))


def early_exit_summary(model: EarlyExitClassifier, messages: MessageSet, *, threads: int | None = None) -> dict:
    """The speed/quality curve of an early-exit model over the default thresholds and its own."""
    import torch

    from textdistill.students.early_exit import DEFAULT_SWEEP, exit_curve

    thresholds = sorted({*DEFAULT_SWEEP, model.threshold})
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        used = torch.get_num_threads()
        curve = exit_curve(model, messages.texts, messages.labels, thresholds)
    finally:
        torch.set_num_threads(previous)
    return {"threshold": model.threshold, "n_layers": model.n_layers, "device": str(model.device), "threads": used, "curve": curve}


def _rejection(out_of_scope, logits: np.ndarray, predicted, true_sets) -> dict:
    """What the reject option does to in-scope test messages (see out_of_scope.measure)."""
    correct = np.array([tuple(p) == tuple(t) for p, t in zip(predicted, true_sets)])
    return {"score": out_of_scope.score, "threshold": out_of_scope.threshold, "max_in_scope_loss": out_of_scope.max_in_scope_loss,
            **measure(out_of_scope.scores(logits), correct, out_of_scope.threshold)}  # fmt: skip


def write_evaluation(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _thresholds(model: TextClassifier) -> dict | None:
    if model.thresholds is None:
        return None
    return {
        "mode": model.threshold_mode,
        "values": {label: float(t) for label, t in zip(model.label_space.labels, model.thresholds)},
    }
