"""Soft targets for a transfer set from one teacher or several (MT-DNN's ensemble distillation).

The teacher that labelled the transfer set has its logits on disk already; any other teacher
scores the transfer texts once and its logits are cached beside the transfer set
(``teachers/<key>.safetensors``), keyed by the teacher's identity and the texts. Several teachers
are combined by a weighted average of their probabilities (softmax rows, or per-label sigmoids
for multi-label), turned back into logits (log, or logit) so that every loss sees one teacher.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textdistill.errors import TextdistillError
from textdistill.models.base import MANIFEST_FILE, TextClassifier, load_model
from textdistill.persistence import load_arrays, save_arrays
from textdistill.transfer.store import TransferSet

CACHE_DIR = "teachers"
_EPS = 1e-7


def teacher_key(teacher_dir: str | Path) -> str:
    """Who a teacher is: its resolved path and its manifest's creation time and data hash."""
    manifest = json.loads((Path(teacher_dir) / MANIFEST_FILE).read_text(encoding="utf-8"))
    identity = [str(Path(teacher_dir).resolve()), manifest.get("created"), manifest.get("training_data", {}).get("sha256")]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def labelled_by(transfer: TransferSet, teacher_dir: str | Path) -> bool:
    """Whether ``teacher_dir`` is the teacher whose logits the transfer set stores."""
    return Path(transfer.manifest["teacher"]["dir"]) == Path(teacher_dir).resolve()


def teacher_logits(teacher_dir: str | Path, transfer: TransferSet, transfer_dir: str | Path) -> np.ndarray:
    """(n, L) logits of one teacher for the transfer texts, in the transfer set's label order."""
    if labelled_by(transfer, teacher_dir):
        return transfer.logits
    return score_texts(teacher_dir, transfer.texts, transfer.labels, transfer_dir)


def score_texts(teacher_dir: str | Path, texts: Sequence[str], labels: Sequence[str], transfer_dir: str | Path) -> np.ndarray:
    """(n, L) logits of a teacher for ``texts`` in ``labels`` order, cached in the transfer set's directory."""
    texts_hash = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = Path(transfer_dir) / CACHE_DIR / f"{teacher_key(teacher_dir)}-{texts_hash}.safetensors"
    if path.is_file():
        return load_arrays(path)["logits"]
    teacher = load_model(teacher_dir)
    logits = teacher.decision_function(list(texts))[:, label_order(teacher, labels, teacher_dir)]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_arrays({"logits": logits.astype(np.float32)}, path)
    return logits


def label_columns(own: Sequence[str], labels: Sequence[str], what: str, than: str, hint: str) -> np.ndarray:
    """Column indices that put outputs in ``own`` order into ``labels`` order; the sets must be
    equal, else an error: ``what`` has other labels than ``than``, and ``hint``."""
    if set(own) != set(labels):
        missing, extra = sorted(set(labels) - set(own)), sorted(set(own) - set(labels))
        raise TextdistillError(f"{what} has other labels than {than} (missing {missing[:5]}, extra {extra[:5]}). {hint}")
    return np.array([list(own).index(label) for label in labels])


def label_order(teacher: TextClassifier, labels: Sequence[str], teacher_dir: str | Path) -> np.ndarray:
    """Column indices that put the teacher's outputs in ``labels`` order; the sets must be equal."""
    return label_columns(teacher.label_space.labels, labels, f"teacher {teacher_dir}", "the transfer set", "Every teacher must be trained on the same label set.")


def combine(logits: Sequence[np.ndarray], weights: Sequence[float] | None, multi_label: bool) -> np.ndarray:
    """Weighted average of the teachers' probabilities, returned as logits."""
    if len(logits) == 1:
        return logits[0]
    weights = np.ones(len(logits)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(weights) != len(logits) or (weights < 0).any() or weights.sum() <= 0:
        raise TextdistillError(f"give one non-negative weight per teacher ({len(logits)} teachers), not all zero; got {list(weights)}")
    weights = weights / weights.sum()
    probabilities = [_probabilities(z.astype(np.float64), multi_label) for z in logits]
    mean = np.clip(sum(w * p for w, p in zip(weights, probabilities)), _EPS, 1 - _EPS)
    combined = np.log(mean) - np.log1p(-mean) if multi_label else np.log(mean)
    return combined.astype(np.float32)


def ensemble_logits(
    teacher_dirs: Sequence[str | Path], transfer: TransferSet, transfer_dir: str | Path, weights: Sequence[float] | None = None
) -> np.ndarray:
    """The soft targets of one or several teachers for the transfer set."""
    if not teacher_dirs:
        raise TextdistillError("give at least one teacher")
    return combine([teacher_logits(t, transfer, transfer_dir) for t in teacher_dirs], weights, transfer.multi_label)


def _probabilities(z: np.ndarray, multi_label: bool) -> np.ndarray:
    if multi_label:
        return 1.0 / (1.0 + np.exp(-z))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
