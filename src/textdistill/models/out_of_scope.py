"""Out-of-scope detection: a reject option for single-label models ("none of these labels").

A single-label model puts every message into some label. With a reject option, a message whose
*out-of-scope score* is above a threshold gets no label instead, with the reason. Every score is
computed from the model's own logits, so every model kind has it, its ONNX and int8 copies
included, and ``predict`` applies it in the process that writes (it has logits, not the model):

- ``msp``: one minus the maximum softmax probability (Hendrycks & Gimpel 2017), the baseline;
- ``energy``: the negative log-sum-exp of the logits (Liu et al. 2020);
- ``maxlogit``: the negative largest logit (Hendrycks et al. 2022);
- ``mahalanobis``: the smallest Mahalanobis distance of the logit vector to a label's mean, one
  covariance shared by all labels (Lee et al. 2018, Podolskiy et al. 2021), fitted on the
  training messages' logits;
- ``knn``: one minus the cosine similarity of the normalised logit vector to its k-th nearest
  training message (Sun et al. 2022).

Higher means more likely out of scope. The threshold is chosen on annotated validation messages
for a largest *in-scope loss*: the share of validation messages the model gets right that the
threshold rejects (rejecting a message it got wrong costs no accuracy). The threshold is the
lowest that keeps the loss at most ``max_in_scope_loss``, so it rejects as much as that allows.
With known out-of-scope examples, ``score="auto"`` chooses the score that rejects most of them at
that loss; without, it is :data:`DEFAULT_SCORE`, ``msp``: on BANKING77 with 10 intents held out
(``benchmarks/out_of_scope.py``) it told unknown intents apart best for the teacher and the
static student; ``mahalanobis`` did for an under-trained BiLSTM.

The reject option lives in ``out_of_scope.json`` (with ``out_of_scope.safetensors`` for the
fitted statistics of ``mahalanobis`` and ``knn``) beside the model's ``manifest.json``, written
by ``textdistill reject``, and names the model it was fitted for, as ``automation.json`` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.metrics import roc_auc_score

from textdistill.errors import ModelError, TextdistillError
from textdistill.models.automation import model_identity
from textdistill.models.manifest import Manifest, read_beside_model

OUT_OF_SCOPE_FILE = "out_of_scope.json"
STATS_FILE = "out_of_scope.safetensors"
FORMAT_VERSION = 1
SCORES = ("msp", "energy", "maxlogit", "mahalanobis", "knn")
FITTED = ("mahalanobis", "knn")  # scores with statistics fitted on the training messages' logits
DEFAULT_SCORE = "msp"  # best AUROC of the five for the teacher and the static student in benchmarks/out_of_scope.py
DEFAULT_MAX_IN_SCOPE_LOSS = 0.01
KNN_K = 10
KNN_BANK = 20_000  # training vectors kept for knn: a seeded sample beyond this
OUT_OF_SCOPE = "out_of_scope"


@dataclass
class OutOfScope:
    """A fitted reject option of one model (what ``out_of_scope.json`` holds)."""

    score: str
    threshold: float  # a message is out of scope when its score is above it
    max_in_scope_loss: float
    validation: dict[str, Any]  # what the threshold gives on the validation messages
    model: dict[str, Any]  # the manifest it was fitted for (see automation.model_identity)
    examples: dict[str, Any] | None = None  # measured on known out-of-scope examples, when given
    stats_sha256: str | None = None
    chosen_on: str | None = None  # the kind of the model it was fitted on, when copied (ONNX)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION
    stats: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def scores(self, logits: np.ndarray) -> np.ndarray:
        return out_of_scope_scores(self.score, logits, self.stats)

    def reject(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rejected mask, scores) of logits (n, L)."""
        scores = self.scores(logits)
        return scores > self.threshold, scores

    def write(self, directory: Path) -> Path:
        directory = Path(directory)
        data = asdict(self)
        data.pop("stats")
        if self.stats:
            from safetensors.numpy import save_file

            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self.stats.items()}, directory / STATS_FILE)
            data["stats_sha256"] = self.stats_sha256 = _sha256(directory / STATS_FILE)
        else:
            (directory / STATS_FILE).unlink(missing_ok=True)  # a fitted score's statistics, left by an earlier fit
        path = directory / OUT_OF_SCOPE_FILE
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def out_of_scope_scores(score: str, logits: np.ndarray, stats: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Out-of-scope scores (n,) of logits (n, L) by the named score; higher is more likely out of scope."""
    z = np.asarray(logits, dtype=np.float64)
    if score == "msp":
        return 1.0 - softmax(z, axis=1).max(axis=1)
    if score == "energy":
        return -logsumexp(z, axis=1)
    if score == "maxlogit":
        return -z.max(axis=1)
    if score == "mahalanobis":
        means, precision = stats["means"].astype(np.float64), stats["precision"].astype(np.float64)
        zp = z @ precision
        # squared distances to every mean: z'Pz - 2 z'P mu + mu'P mu, the smallest per message
        d = (zp * z).sum(axis=1, keepdims=True) - 2 * zp @ means.T + ((means @ precision) * means).sum(axis=1)
        return d.min(axis=1)
    if score == "knn":
        bank = stats["bank"].astype(np.float32)
        k = min(KNN_K, len(bank))
        unit = _normalise(z).astype(np.float32)
        out = np.empty(len(unit))
        for start in range(0, len(unit), 2048):  # bounded memory: 2048 x bank similarities at a time
            sims = unit[start : start + 2048] @ bank.T
            out[start : start + 2048] = 1.0 - np.partition(sims, -k, axis=1)[:, -k]
        return out
    raise TextdistillError(f"out-of-scope score {score!r} is unknown; choose one of: {', '.join(SCORES)}, or auto.")


def fit_stats(score: str, logits: np.ndarray, label_index: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """What ``mahalanobis`` (label means, shared precision) or ``knn`` (a bank of normalised
    vectors) needs, from the training messages' logits and label indices; {} for the others."""
    z = np.asarray(logits, dtype=np.float64)
    if score == "mahalanobis":
        labels = np.unique(label_index)
        means = np.zeros((int(label_index.max()) + 1, z.shape[1]))
        for label in labels:
            means[label] = z[label_index == label].mean(axis=0)
        centred = z - means[label_index]
        covariance = centred.T @ centred / max(len(z) - 1, 1)
        covariance += np.eye(len(covariance)) * 1e-6 * max(np.trace(covariance) / len(covariance), 1e-12)
        return {"means": means[labels], "precision": np.linalg.pinv(covariance, hermitian=True)}
    if score == "knn":
        rows = np.random.default_rng(seed).permutation(len(z))[:KNN_BANK] if len(z) > KNN_BANK else np.arange(len(z))
        return {"bank": _normalise(z[np.sort(rows)])}
    return {}


def choose_threshold(scores: np.ndarray, correct: np.ndarray, max_in_scope_loss: float) -> float:
    """The lowest threshold (reject above it) at which the validation messages rejected and
    correctly predicted are at most ``max_in_scope_loss`` of all; never one that splits tied scores."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    lost = np.cumsum(correct[order]) / n  # lost[m - 1]: the loss of rejecting the m highest
    allowed = lost <= max_in_scope_loss + 1e-12
    cut = ranked[:-1] > ranked[1:]  # rejecting the m highest is a threshold only between distinct scores
    ok = np.flatnonzero(allowed & np.append(cut, True))
    if not len(ok):
        return float(ranked[0])  # reject nothing
    m = int(ok[-1]) + 1
    return float(ranked[m]) if m < n else float(np.nextafter(ranked[-1], -np.inf))  # reject all, finite for JSON


def measure(scores: np.ndarray, correct: np.ndarray, threshold: float) -> dict[str, Any]:
    """What a threshold gives on annotated in-scope messages: rejected share, accuracy before and
    after (a rejected message counts as wrong), the loss, and accuracy on the kept messages."""
    rejected = np.asarray(scores) > threshold
    correct = np.asarray(correct, dtype=bool)
    n = len(correct)
    kept = ~rejected
    return {
        "n": n,
        "rejected_share": float(rejected.mean()) if n else None,
        "accuracy": float(correct.mean()) if n else None,
        "accuracy_with_rejection": float((correct & kept).mean()) if n else None,
        "in_scope_loss": float((correct & rejected).mean()) if n else None,
        "accuracy_of_kept": float(correct[kept].mean()) if kept.any() else None,
    }


def separation(in_scope: np.ndarray, out_of_scope: np.ndarray, threshold: float) -> dict[str, Any]:
    """How a score tells out-of-scope from in-scope messages: AUROC and the share of
    out-of-scope messages the threshold rejects."""
    y = np.r_[np.zeros(len(in_scope)), np.ones(len(out_of_scope))]
    auroc = float(roc_auc_score(y, np.r_[in_scope, out_of_scope])) if len(in_scope) and len(out_of_scope) else None
    return {"n": len(out_of_scope), "auroc": auroc, "rejected_share": float((np.asarray(out_of_scope) > threshold).mean()) if len(out_of_scope) else None}


def fit_out_of_scope(
    manifest: Manifest,
    train_logits: np.ndarray,
    train_label_index: np.ndarray,
    validation_logits: np.ndarray,
    validation_correct: np.ndarray,
    *,
    score: str = "auto",
    max_in_scope_loss: float = DEFAULT_MAX_IN_SCOPE_LOSS,
    examples_logits: np.ndarray | None = None,
) -> OutOfScope:
    """Fit each candidate score on the training logits, choose its threshold on validation,
    and keep ``score`` (``auto``: the one rejecting most known out-of-scope examples, AUROC
    breaking ties; :data:`DEFAULT_SCORE` without examples)."""
    check_settings(manifest, score, max_in_scope_loss)
    candidates = SCORES if score == "auto" and examples_logits is not None else ((DEFAULT_SCORE,) if score == "auto" else (score,))
    fitted = []
    for name in candidates:
        stats = fit_stats(name, train_logits, train_label_index)
        val_scores = out_of_scope_scores(name, validation_logits, stats)
        threshold = choose_threshold(val_scores, validation_correct, max_in_scope_loss)
        found = None if examples_logits is None else separation(val_scores, out_of_scope_scores(name, examples_logits, stats), threshold)
        fitted.append((name, stats, threshold, measure(val_scores, validation_correct, threshold), found))
    if examples_logits is not None:
        fitted.sort(key=lambda f: (f[4]["rejected_share"], f[4]["auroc"] or 0.0), reverse=True)
    name, stats, threshold, validation, found = fitted[0]
    examples = None
    if found is not None:
        examples = {**found, "compared": {f[0]: {"threshold": f[2], **f[4]} for f in fitted}}
    return OutOfScope(name, threshold, max_in_scope_loss, validation, model_identity(manifest), examples, stats=stats)


def check_settings(manifest: Manifest, score: str, max_in_scope_loss: float) -> None:
    if manifest.multi_label:
        raise TextdistillError(
            "a multi-label model already says 'none of these labels' (no label above its threshold); a reject option is for "
            "single-label models. textdistill automate sets per-label thresholds for multi-label models."
        )
    if score != "auto" and score not in SCORES:
        raise TextdistillError(f"out-of-scope score {score!r} is unknown; choose one of: {', '.join(SCORES)}, or auto.")
    if not (isinstance(max_in_scope_loss, int | float) and 0 <= max_in_scope_loss < 1):  # also refuses NaN
        raise TextdistillError(f"--max-in-scope-loss is {max_in_scope_loss}; it is a share of validation messages, at least 0 and below 1 (0.01: one point of accuracy).")


def read_out_of_scope(directory: str | Path, manifest: Manifest) -> OutOfScope | None:
    """The reject option saved beside the model in ``directory``; None when it has none. A
    :class:`ModelError` naming the file when it is damaged or was fitted for another model."""
    directory = Path(directory)
    found = read_beside_model(directory / OUT_OF_SCOPE_FILE, "an out-of-scope file", FORMAT_VERSION, lambda data: OutOfScope(**data), _REDO_HINT)
    if found is None:
        return None
    path = directory / OUT_OF_SCOPE_FILE
    if found.score not in SCORES or not isinstance(found.threshold, int | float):
        raise ModelError(f"names the score {found.score!r} with threshold {found.threshold!r}, which this textdistill does not read.", file=path, hint=_REDO_HINT)
    if found.model != model_identity(manifest):
        raise ModelError("holds a reject option fitted for another model (the model in this directory was saved again since).", file=path, hint=_REDO_HINT)
    if found.score in FITTED:
        stats_path = directory / STATS_FILE
        if not stats_path.is_file() or _sha256(stats_path) != found.stats_sha256:
            raise ModelError(f"needs {STATS_FILE} beside it as it was written, and it is missing or changed.", file=path, hint=_REDO_HINT)
        from safetensors.numpy import load_file

        found.stats = load_file(stats_path)
    return found


_REDO_HINT = "run `textdistill reject MODEL --train FILE --validation FILE` again for this model, or delete the file to predict without it."


def rebind(found: OutOfScope, manifest: Manifest, chosen_on: str) -> OutOfScope:
    """The same reject option tied to another model (an ONNX copy), saying which kind it was fitted on."""
    return OutOfScope(
        found.score, found.threshold, found.max_in_scope_loss, found.validation, model_identity(manifest), found.examples,
        found.stats_sha256, found.chosen_on or chosen_on, found.created, stats=found.stats,
    )


def fit_model(
    model_dir: str | Path,
    train,
    validation,
    *,
    score: str = "auto",
    max_in_scope_loss: float = DEFAULT_MAX_IN_SCOPE_LOSS,
    examples: Sequence[str] | None = None,
    skip_bad_rows: bool = False,
) -> OutOfScope:
    """Fit the reject option of the model saved in ``model_dir`` and save it there: statistics
    on ``train``, threshold on ``validation`` (annotated :class:`MessageSet` s), optionally
    measured on known out-of-scope example texts; settings are checked before the model predicts."""
    from textdistill.evaluate.evaluation import decision_function_batched, drop_unknown_labels
    from textdistill.models.base import load_model

    model_dir = Path(model_dir)
    model = load_model(model_dir)
    check_settings(model.manifest, score, max_in_scope_loss)
    space = model.label_space
    train = drop_unknown_labels(train.annotated(), model, skip_bad_rows)
    validation = drop_unknown_labels(validation.annotated(), model, skip_bad_rows)
    if not len(validation):
        raise TextdistillError("the validation file has no annotated message of the model's labels to choose the threshold on.")
    index = {label: i for i, label in enumerate(space.labels)}
    train_logits = decision_function_batched(model, train.texts, "Scoring the training messages")
    val_logits = decision_function_batched(model, validation.texts, "Scoring the validation messages")
    predicted = np.asarray(val_logits).argmax(axis=1)
    correct = np.array([space.labels[p] == labels[0] for p, labels in zip(predicted, validation.labels)])
    examples_logits = decision_function_batched(model, list(examples), "Scoring the out-of-scope examples") if examples else None
    found = fit_out_of_scope(
        model.manifest, train_logits, np.array([index[labels[0]] for labels in train.labels]), val_logits, correct,
        score=score, max_in_scope_loss=max_in_scope_loss, examples_logits=examples_logits,
    )
    found.write(model_dir)
    return found


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
