"""Label messages with a teacher's logits, resumably: the pseudo-labelled transfer set.

The work list is fixed before anything is scored: the original messages, then the augmented
texts (deterministic for the augmentation seed) without exact duplicates of any earlier text.
It is cut into shards of ``shard_size``; each shard is scored with its texts sorted by length
(batches of similar length waste less padding in a transformer), optionally filtered, and
written atomically. A rerun with the same arguments skips the shards already on disk, so an
interrupted run finishes with exactly what an uninterrupted one writes. A rerun with another
teacher, input (its ids and texts, whatever the file is called) or options is refused;
``batch_size`` and the engine are left out of that check, as they change speed and memory, not
what is stored (a run started locally can be finished on Ray). The engine
(:mod:`textdistill.engines`) decides where the teacher runs: in this process, or in a pool of
Ray actors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import log_expit, log_softmax

from textdistill import shards
from textdistill.data.messages import MessageSet
from textdistill.engines import Engine, LocalEngine
from textdistill.errors import TextdistillError
from textdistill.models.base import MANIFEST_FILE
from textdistill.models.manifest import Manifest, package_versions
from textdistill.transfer import store
from textdistill.transfer.augment import AugmentConfig, augment_messages
from textdistill.transfer.store import TransferSet

ORIGINAL = "original"
_IDENTITY = ("teacher", "labels", "multi_label", "source", "options")
_FILTERS = ("min_confidence", "max_entropy")


def label_messages(
    teacher_dir: str | Path,
    messages: MessageSet,
    out_dir: str | Path,
    *,
    augment: AugmentConfig | None = None,
    shard_size: int = 1024,
    batch_size: int = 64,
    min_confidence: float | None = None,
    max_entropy: float | None = None,
    top_k: int | None = None,
    engine: Engine | None = None,
    provenance: Mapping[str, Sequence[str]] | None = None,
) -> TransferSet:
    """Score ``messages`` (and their augmentations) with the teacher into ``out_dir``.

    ``min_confidence`` keeps messages whose highest probability (softmax, or per-label sigmoid
    for multi-label) is at least that; ``max_entropy`` keeps those whose normalised entropy
    (entropy / log L; multi-label: mean binary entropy in bits) is at most that. Dropped
    messages are counted per reason in the manifest. ``top_k`` stores only the k largest
    logits of each message. Rerunning the same call resumes an interrupted run. ``engine``:
    where the teacher scores (default: :class:`LocalEngine`, in this process). ``provenance``:
    each message's ``origin`` and ``source_id`` when they were made earlier (a file written by
    ``textdistill augment``); without it every message is an original of its own.
    """
    if len(messages) == 0:
        raise TextdistillError(f"{messages.source} holds no messages to label.")
    if shard_size < 1 or batch_size < 1 or (top_k is not None and top_k < 1):
        raise TextdistillError(f"shard_size, batch_size and top_k must be at least 1 (got {shard_size}, {batch_size}, {top_k}).")
    out_dir = Path(out_dir)
    teacher = Manifest.read(Path(teacher_dir) / MANIFEST_FILE)
    items, counts = _work_list(messages, augment, provenance)
    bounds = shards.shard_bounds(len(items["id"]), shard_size)
    manifest = {
        "format_version": store.FORMAT_VERSION,
        "teacher": {
            "dir": str(Path(teacher_dir).resolve()),
            "kind": teacher.kind,
            "training_data_sha256": teacher.training_data.get("sha256"),
            "created": teacher.created,
        },
        "labels": list(teacher.labels),
        "multi_label": teacher.multi_label,
        "source_file": messages.source,
        "source": {"n_messages": len(messages), "sha256": messages_sha256(messages)},
        "options": {
            "augment": None if augment is None else asdict(augment),
            "shard_size": shard_size,
            "min_confidence": min_confidence,
            "max_entropy": max_entropy,
            "top_k": top_k,
        },
        "batch_size": batch_size,
        "n_shards": len(bounds),
        "counts": counts,
        "finished": False,
        "versions": package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest = json.loads(json.dumps(manifest))  # tuples become lists, as they read back
    todo = shards.start(out_dir, manifest, _IDENTITY, store.WHAT)

    def write(k: int, logits: np.ndarray) -> None:
        _write_shard(items, bounds[k], logits, shards.shard_path(out_dir, k), teacher.multi_label, min_confidence, max_entropy, top_k)

    (engine or LocalEngine()).run(
        Path(teacher_dir), items["text"], {k: bounds[k] for k in todo}, batch_size, write, "Labelling messages with the teacher"
    )

    stats = [shards.shard_stats(shards.shard_path(out_dir, k), store.COMMAND) for k in range(len(bounds))]
    counts["filtered_out"] = {reason: sum(s["filtered_out"][reason] for s in stats) for reason in _FILTERS}
    counts["filtered_out_total"] = sum(s["filtered_out_total"] for s in stats)
    counts["written"] = counts["scored"] - counts["filtered_out_total"]
    manifest.update(counts=counts, finished=True)
    shards.write_manifest(out_dir, manifest)
    return TransferSet.load(out_dir)


def messages_sha256(messages: MessageSet) -> str:
    """A hash of the messages' ids and texts, in order: what a rerun must be given again."""
    digest = hashlib.sha256()
    for message_id, text in zip(messages.ids, messages.texts):
        digest.update(json.dumps([message_id, text], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _work_list(
    messages: MessageSet, config: AugmentConfig | None, provenance: Mapping[str, Sequence[str]] | None
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """The given messages then deduplicated augmentations, as columns; and the counts of how they
    were made."""
    provenance = provenance or {"origin": [ORIGINAL] * len(messages), "source_id": messages.ids}
    if any(len(provenance[column]) != len(messages) for column in ("origin", "source_id")):
        raise TextdistillError(f"provenance of {len(provenance['origin'])} messages given for {len(messages)}")
    items = {"id": list(messages.ids), "text": list(messages.texts), "origin": list(provenance["origin"]), "source_id": list(provenance["source_id"])}
    originals = items["origin"].count(ORIGINAL)
    counts: dict[str, Any] = {"originals": originals, "augmented": len(messages) - originals, "augment_unchanged": 0, "duplicates_removed": 0}
    if config is not None:
        augmented = augment_messages(messages.texts, messages.ids, config, set(messages.texts))
        for column, values in zip(("id", "text", "origin", "source_id"), (augmented.ids, augmented.texts, augmented.origins, augmented.source_ids)):
            items[column] += values
        counts.update({**augmented.counts, "augmented": counts["augmented"] + augmented.counts["augmented"]})
    counts["scored"] = len(items["id"])
    return items, counts


def _write_shard(
    items: dict[str, list[str]],
    bounds: tuple[int, int],
    logits: np.ndarray,
    path: Path,
    multi_label: bool,
    min_confidence: float | None,
    max_entropy: float | None,
    top_k: int | None,
) -> None:
    """Filter one scored shard and write it."""
    fails = _filter_failures(logits, multi_label, min_confidence, max_entropy)
    keep = np.ones(len(logits), dtype=bool)
    for failed in fails.values():
        keep &= ~failed
    columns = {name: [values[bounds[0] + i] for i in np.flatnonzero(keep)] for name, values in items.items()}
    stats = {
        "n_input": len(logits),
        "filtered_out": {reason: int(fails[reason].sum()) if reason in fails else 0 for reason in _FILTERS},
        "filtered_out_total": int((~keep).sum()),
    }
    store.write_shard(path, columns, logits[keep], top_k, stats)


def confidence(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Highest probability per message: softmax, or per-label sigmoid for multi-label."""
    logits = logits.astype(np.float64)
    log_p = log_expit(logits) if multi_label else log_softmax(logits, axis=1)
    return np.exp(log_p.max(axis=1))


def normalised_entropy(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Uncertainty in [0, 1]: entropy / log L, or for multi-label the mean binary entropy in bits."""
    logits = logits.astype(np.float64)
    if multi_label:
        log_p, log_q = log_expit(logits), log_expit(-logits)
        entropy = -(np.exp(log_p) * log_p + np.exp(log_q) * log_q) / np.log(2)
        return entropy.mean(axis=1)
    log_p = log_softmax(logits, axis=1)
    return -(np.exp(log_p) * log_p).sum(axis=1) / np.log(logits.shape[1])


def _filter_failures(
    logits: np.ndarray, multi_label: bool, min_confidence: float | None, max_entropy: float | None
) -> dict[str, np.ndarray]:
    """For each filter in use, which messages it drops."""
    fails = {}
    if min_confidence is not None:
        fails["min_confidence"] = confidence(logits, multi_label) < min_confidence
    if max_entropy is not None:
        fails["max_entropy"] = normalised_entropy(logits, multi_label) > max_entropy
    return fails
