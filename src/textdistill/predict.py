"""Batch prediction into resumable Parquet shards: ``textdistill predict``.

The input is one or more message files (:mod:`textdistill.data.chunks`), each read whole by
the engine, one file at a time, and cut into chunks of ``shard_size`` messages. Chunk j of
input file i becomes ``shards/part-{i:05d}-{j:05d}.parquet``, one row per message, in input
order:

- ``id`` (string) and ``text`` (string: the text the model read, text columns joined and
  email cleaned as the model was trained);
- ``labels`` (list<string>): the predicted label set, as ``TextClassifier.predict_label_sets``
  gives it (:meth:`LabelSpace.predict`): single-label, the most probable label; multi-label,
  every label whose sigmoid (raised to its highest descendant's in a hierarchy) reaches its
  threshold, with its ancestors;
- ``withheld`` (list<string>), only for a model with automation thresholds (``textdistill
  automate``, :mod:`textdistill.models.automation`): the predicted labels below their threshold
  or never automated, which ``labels`` then leaves out; ``labels`` holds the automated labels
  with their ancestors (single-label hierarchies included), empty when all are withheld;
- ``out_of_scope`` (bool) and ``out_of_scope_score`` (float64), only for a model with a reject
  option (``textdistill reject``, :mod:`textdistill.models.out_of_scope`): a message above its
  threshold matches none of the labels; its ``labels`` are empty (and nothing is withheld);
- ``logits`` (list<float32>): one per label, in the manifest's ``labels`` order.
  Probabilities are their softmax (single-label) or per-label sigmoids (multi-label);
- ``file`` (string): the input file, as given; ``row`` (int64): the message's 1-based data row
  in it (the header is not counted), to join predictions back to the input.

Each shard's stats record its messages (``n_input``), the bad rows skipped among them
(``skipped_rows``, with ``skip_bad_rows``) and whether it is its file's ``last`` chunk.
``manifest.json`` names the model, its labels and thresholds (``automation``: the automation
thresholds per label, null without; ``out_of_scope``: the reject option's score and threshold,
null without), the input files with their size
and modification time, and how they were read; once finished, the messages and skipped rows of
each file. The directory follows the transfer set's conventions (:mod:`textdistill.shards`):
shards are written atomically, an interrupted run finishes with the same command (on either
engine), reading only the files not finished (a file is finished when its last chunk and every
chunk before it are written), and a rerun with another model, changed input files, other
reading options or another shard size is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.special import expit, softmax

from textdistill import shards
from textdistill.data.chunks import Chunk, ChunkReader, FileToRead, InputFile, input_files
from textdistill.data.messages import DataSpec
from textdistill.engines import Engine, LocalEngine
from textdistill.errors import TextdistillError
from textdistill.models.automation import Automation, automate_batch, read_automation
from textdistill.models.out_of_scope import read_out_of_scope
from textdistill.models.base import MANIFEST_FILE
from textdistill.models.manifest import Manifest, package_versions

FORMAT_VERSION = 2
WHAT = "prediction set"
COMMAND = "textdistill predict"
_IDENTITY = ("model", "labels", "multi_label", "thresholds", "automation", "out_of_scope", "source", "options")
_READING = ("text_columns", "id_column", "clean_email", "skip_bad_rows", "encoding")  # what the spec changes in the output


def predict_files(
    model_dir: str | Path,
    data: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    spec: DataSpec | None = None,
    shard_size: int = 1024,
    batch_size: int = 64,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Predict the messages of ``data`` (files, directories of files, glob patterns) with the
    model in ``model_dir`` into ``out_dir`` (see the module docstring for the format), reading
    them as ``spec`` says (label columns are ignored). Rerunning the same call resumes an
    interrupted run. ``engine``: where files are read and the model runs (default:
    :class:`LocalEngine`, in this process). Returns the finished manifest, with the counts per
    file; :meth:`Predictions.load` reads the rows."""
    if shard_size < 1 or batch_size < 1:
        raise TextdistillError(f"shard_size and batch_size must be at least 1 (got {shard_size}, {batch_size}).")
    spec = replace(spec or DataSpec(), annotated_column=None)
    files = input_files([data] if isinstance(data, (str, Path)) else data)
    out_dir = Path(out_dir)
    model = Manifest.read(Path(model_dir) / MANIFEST_FILE)
    automation = read_automation(model_dir, model)
    out_of_scope = read_out_of_scope(model_dir, model)
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
        "automation": _automation_summary(automation),
        "out_of_scope": None if out_of_scope is None else {"score": out_of_scope.score, "threshold": out_of_scope.threshold, "created": out_of_scope.created},
        "source": {"files": [asdict(f) for f in files], "reading": {key: getattr(spec, key) for key in _READING}},
        "options": {"shard_size": shard_size},
        "batch_size": batch_size,
        "finished": False,
        "versions": package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest = json.loads(json.dumps(manifest))  # tuples become lists, as they read back
    shards.prepare(out_dir, manifest, _IDENTITY, WHAT)

    def write(chunk: Chunk, logits: np.ndarray) -> None:
        label_sets = label_sets_from_logits(logits, model)
        withheld = rejected = None
        if automation is not None:
            decided = automate_batch(automation, model.label_space, probabilities_from_logits(logits, model), label_sets)
            label_sets, withheld = [kept for kept, _ in decided], [[w.label for w in held] for _, held in decided]
        if out_of_scope is not None:
            rejected, scores = out_of_scope.reject(logits)
            label_sets = [() if r else s for r, s in zip(rejected, label_sets)]
            withheld = None if withheld is None else [[] if r else w for r, w in zip(rejected, withheld)]
        arrays = {
            "id": pa.array(chunk.ids, pa.string()),
            "text": pa.array(chunk.texts, pa.string()),
            "labels": pa.array([list(s) for s in label_sets], pa.list_(pa.string())),
            **({"withheld": pa.array(withheld, pa.list_(pa.string()))} if withheld is not None else {}),
            **({"out_of_scope": pa.array(rejected, pa.bool_()), "out_of_scope_score": pa.array(scores, pa.float64())} if rejected is not None else {}),
            "logits": shards.list_array(np.asarray(logits, dtype=np.float32), pa.float32()),
            "file": pa.array([chunk.file] * len(chunk), pa.string()),
            "row": pa.array(chunk.rows, pa.int64()),
        }
        stats = {"n_input": len(chunk), "skipped_rows": chunk.skipped, "last": chunk.last}
        shards.write_shard(shards.shard_path(out_dir, (chunk.file_index, chunk.index)), arrays, stats)

    reader = ChunkReader(spec, shard_size, prefix_ids=len(files) > 1)
    todo = _unfinished(files, _written_chunks(out_dir))
    (engine or LocalEngine()).run_files(Path(model_dir), reader, todo, batch_size, write, "Predicting")
    manifest.update(counts=_counts(out_dir, files), finished=True)
    shards.write_manifest(out_dir, manifest)
    return manifest


def label_sets_from_logits(logits: np.ndarray, model: Manifest) -> list[tuple[str, ...]]:
    """Predicted label sets by the rule of ``TextClassifier.predict_label_sets``, from logits
    and the model's manifest (so the process that writes needs no model loaded)."""
    space = model.label_space
    # single-label: the argmax of the logits is that of their softmax
    return space.predict(expit(logits.astype(np.float64)) if space.multi_label else logits, model.thresholds)


def probabilities_from_logits(logits: np.ndarray, model: Manifest) -> np.ndarray:
    """Softmax rows (single-label) or per-label sigmoids (multi-label) of logits (n, L)."""
    logits = np.asarray(logits, dtype=np.float64)
    return expit(logits) if model.multi_label else softmax(logits, axis=1)


def _automation_summary(automation: Automation | None) -> dict[str, Any] | None:
    """What a prediction set records of the automation thresholds it applied (a rerun after
    ``textdistill automate`` chose new ones is refused, not mixed)."""
    if automation is None:
        return None
    return {
        "target_precision": automation.target_precision,
        "created": automation.created,
        "thresholds": {entry.label: entry.threshold for entry in automation.labels},
    }


def _written_chunks(out_dir: Path) -> dict[int, dict[int, dict[str, Any]]]:
    """The stats of every chunk written, by input file and chunk index."""
    written: dict[int, dict[int, dict[str, Any]]] = {}
    for key in shards.written_shards(out_dir):
        if len(key) == 2:
            written.setdefault(key[0], {})[key[1]] = shards.shard_stats(shards.shard_path(out_dir, key), COMMAND)
    return written


def _unfinished(files: Sequence[InputFile], written: dict[int, dict[int, dict[str, Any]]]) -> list[FileToRead]:
    """The files still to read, with the chunks of each already written."""
    todo = []
    for i, file in enumerate(files):
        chunks = written.get(i, {})
        last = [j for j, stats in chunks.items() if stats["last"]]
        if not (last and len(chunks) == last[0] + 1):
            todo.append(FileToRead(i, file, frozenset(chunks)))
    return todo


def _counts(out_dir: Path, files: Sequence[InputFile]) -> dict[str, Any]:
    """Messages and skipped rows, per file and in all, from the stats of the written shards."""
    written = _written_chunks(out_dir)
    unfinished = _unfinished(files, written)
    if unfinished:
        raise TextdistillError(
            f"the engine finished without writing every chunk of {', '.join(f.file.path for f in unfinished[:3])}. "
            f"What to do: run the same command again to predict the rest; written shards are kept."
        )
    per_file = [
        {
            "path": file.path,
            "n_messages": sum(s["n_input"] for s in written[i].values()),
            "skipped_rows": sum(s["skipped_rows"] for s in written[i].values()),
            "n_shards": len(written[i]),
        }
        for i, file in enumerate(files)
    ]
    return {
        "n_messages": sum(f["n_messages"] for f in per_file),
        "skipped_rows": sum(f["skipped_rows"] for f in per_file),
        "files": per_file,
    }


@dataclass
class Predictions:
    """A finished prediction set, read back: one entry per input message, in input order."""

    ids: list[str]
    texts: list[str]
    files: list[str]
    rows: list[int]
    label_sets: list[tuple[str, ...]]
    logits: np.ndarray
    labels: list[str]
    multi_label: bool
    manifest: dict[str, Any]
    withheld: list[tuple[str, ...]] | None = None  # with automation thresholds only
    out_of_scope: list[bool] | None = None  # with a reject option only

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, out_dir: str | Path) -> Predictions:
        """Every shard's rows, in (file, chunk) order: the order of the input."""
        out_dir = Path(out_dir)
        manifest = shards.finished_manifest(out_dir, FORMAT_VERSION, WHAT, COMMAND)
        keys = [(i, j) for i, file in enumerate(manifest["counts"]["files"]) for j in range(file["n_shards"])]
        table = shards.read_shards(out_dir, keys, WHAT, COMMAND)
        labels = manifest["labels"]
        return cls(
            table.column("id").to_pylist(),
            table.column("text").to_pylist(),
            table.column("file").to_pylist(),
            table.column("row").to_pylist(),
            [tuple(s) for s in table.column("labels").to_pylist()],
            shards.list_rows(table.column("logits"), len(labels), np.float32),
            labels,
            manifest["multi_label"],
            manifest,
            [tuple(s) for s in table.column("withheld").to_pylist()] if "withheld" in table.column_names else None,
            table.column("out_of_scope").to_pylist() if "out_of_scope" in table.column_names else None,
        )
