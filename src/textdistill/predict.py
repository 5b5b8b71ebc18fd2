"""Batch prediction into resumable Parquet shards: ``textdistill predict``.

``shards/part-NNNNN.parquet`` hold one row per input message, in input order:

- ``id`` (string) and ``text`` (string: the text the model read, text columns joined and
  email cleaned as the model was trained);
- ``labels`` (list<string>): the predicted label set, as ``TextClassifier.predict_label_sets``
  gives it: single-label, the most probable label; multi-label, every label whose sigmoid
  reaches its threshold, with its ancestors in a hierarchy;
- ``logits`` (list<float32>): one per label, in the manifest's ``labels`` order.
  Probabilities are their softmax (single-label) or per-label sigmoids (multi-label).

``manifest.json`` names the model, its labels and thresholds, and the input's hash. The
directory follows the transfer set's conventions (:mod:`textdistill.shards`): shards are
written atomically, an interrupted run finishes with the same command (on either engine), and a
rerun with another model, input or shard size is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.special import expit

from textdistill import shards
from textdistill.data.messages import MessageSet
from textdistill.engines import Engine, LocalEngine
from textdistill.errors import TextdistillError
from textdistill.models.base import MANIFEST_FILE
from textdistill.models.manifest import Manifest, package_versions
from textdistill.transfer.score import messages_sha256

FORMAT_VERSION = 1
WHAT = "prediction set"
COMMAND = "textdistill predict"
_IDENTITY = ("model", "labels", "multi_label", "thresholds", "source", "options")


def predict_messages(
    model_dir: str | Path,
    messages: MessageSet,
    out_dir: str | Path,
    *,
    shard_size: int = 1024,
    batch_size: int = 64,
    engine: Engine | None = None,
) -> Predictions:
    """Predict ``messages`` with the model in ``model_dir`` into ``out_dir`` (see the module
    docstring for the format). Rerunning the same call resumes an interrupted run. ``engine``:
    where the model runs (default: :class:`LocalEngine`, in this process)."""
    if len(messages) == 0:
        raise TextdistillError(f"{messages.source} holds no messages to predict.")
    if shard_size < 1 or batch_size < 1:
        raise TextdistillError(f"shard_size and batch_size must be at least 1 (got {shard_size}, {batch_size}).")
    out_dir = Path(out_dir)
    model = Manifest.read(Path(model_dir) / MANIFEST_FILE)
    bounds = shards.shard_bounds(len(messages), shard_size)
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": {
            "dir": str(Path(model_dir).resolve()),
            "kind": model.kind,
            "training_data_sha256": model.training_data.get("sha256"),
            "created": model.created,
        },
        "labels": list(model.labels),
        "multi_label": model.multi_label,
        "thresholds": model.thresholds,
        "source_file": messages.source,
        "source": {"n_messages": len(messages), "sha256": messages_sha256(messages)},
        "options": {"shard_size": shard_size},
        "batch_size": batch_size,
        "n_shards": len(bounds),
        "finished": False,
        "versions": package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    todo = shards.start(out_dir, manifest, _IDENTITY, WHAT)

    def write(k: int, logits: np.ndarray) -> None:
        start, end = bounds[k]
        arrays = {
            "id": pa.array(messages.ids[start:end], pa.string()),
            "text": pa.array(messages.texts[start:end], pa.string()),
            "labels": pa.array([list(s) for s in label_sets_from_logits(logits, model)], pa.list_(pa.string())),
            "logits": shards.list_array(np.asarray(logits, dtype=np.float32), pa.float32()),
        }
        shards.write_shard(shards.shard_path(out_dir, k), arrays, {"n_input": end - start})

    (engine or LocalEngine()).run(Path(model_dir), messages.texts, {k: bounds[k] for k in todo}, batch_size, write, "Predicting")
    manifest["finished"] = True
    shards.write_manifest(out_dir, manifest)
    return Predictions.load(out_dir)


def label_sets_from_logits(logits: np.ndarray, model: Manifest) -> list[tuple[str, ...]]:
    """Predicted label sets by the rule of ``TextClassifier.predict_label_sets``, from logits
    and the model's manifest (so the process that writes needs no model loaded)."""
    space = model.label_space
    if space.multi_label:
        return space.decode(expit(logits.astype(np.float64)) >= np.asarray(model.thresholds))
    return [(space.labels[j],) for j in logits.argmax(axis=1)]


@dataclass
class Predictions:
    """A finished prediction set, read back: one entry per input message, in input order."""

    ids: list[str]
    texts: list[str]
    label_sets: list[tuple[str, ...]]
    logits: np.ndarray
    labels: list[str]
    multi_label: bool
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, out_dir: str | Path) -> Predictions:
        manifest, table = shards.read_finished(Path(out_dir), FORMAT_VERSION, WHAT, COMMAND)
        labels = manifest["labels"]
        return cls(
            table.column("id").to_pylist(),
            table.column("text").to_pylist(),
            [tuple(s) for s in table.column("labels").to_pylist()],
            shards.list_rows(table.column("logits"), len(labels), np.float32),
            labels,
            manifest["multi_label"],
            manifest,
        )

