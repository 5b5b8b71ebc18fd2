"""Label messages with a teacher's logits, resumably: the pseudo-labelled transfer set.

The work list is fixed before anything is scored: the original messages, then the augmented
texts (deterministic for the augmentation seed) without exact duplicates of any earlier text.
It is cut into shards of ``shard_size``; each shard is scored with its texts sorted by length
(batches of similar length waste less padding in a transformer), optionally filtered, and
written atomically. A rerun with the same arguments skips the shards already on disk, so an
interrupted run finishes with exactly what an uninterrupted one writes. A rerun with another
teacher, input (its ids and texts, whatever the file is called) or options is refused;
``batch_size`` is left out of that check, as it changes speed and memory, not what is stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import log_expit, log_softmax

from textdistill.data.messages import MessageSet
from textdistill.errors import TextdistillError
from textdistill.models.base import TextClassifier, load_model
from textdistill.models.manifest import package_versions
from textdistill.progress import track
from textdistill.transfer import store
from textdistill.transfer.augment import AugmentConfig, augment as augment_texts
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
) -> TransferSet:
    """Score ``messages`` (and their augmentations) with the teacher into ``out_dir``.

    ``min_confidence`` keeps messages whose highest probability (softmax, or per-label sigmoid
    for multi-label) is at least that; ``max_entropy`` keeps those whose normalised entropy
    (entropy / log L; multi-label: mean binary entropy in bits) is at most that. Dropped
    messages are counted per reason in the manifest. ``top_k`` stores only the k largest
    logits of each message. Rerunning the same call resumes an interrupted run.
    """
    if len(messages) == 0:
        raise TextdistillError(f"{messages.source} holds no messages to label.")
    if shard_size < 1 or batch_size < 1 or (top_k is not None and top_k < 1):
        raise TextdistillError(f"shard_size, batch_size and top_k must be at least 1 (got {shard_size}, {batch_size}, {top_k}).")
    out_dir = Path(out_dir)
    teacher = load_model(teacher_dir)
    space = teacher.label_space
    items, counts = _work_list(messages, augment)
    n_shards = -(-len(items["id"]) // shard_size)
    manifest = {
        "format_version": store.FORMAT_VERSION,
        "teacher": {
            "dir": str(Path(teacher_dir).resolve()),
            "kind": teacher.kind,
            "training_data_sha256": teacher.manifest.training_data.get("sha256"),
            "created": teacher.manifest.created,
        },
        "labels": list(space.labels),
        "multi_label": space.multi_label,
        "source_file": messages.source,
        "source": {"n_messages": len(messages), "sha256": _messages_sha256(messages)},
        "options": {
            "augment": None if augment is None else asdict(augment),
            "shard_size": shard_size,
            "min_confidence": min_confidence,
            "max_entropy": max_entropy,
            "top_k": top_k,
        },
        "batch_size": batch_size,
        "n_shards": n_shards,
        "counts": counts,
        "finished": False,
        "versions": package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest = json.loads(json.dumps(manifest))  # tuples become lists, as they read back
    _check_resumable(out_dir, manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    store.remove_partial_files(out_dir)
    store.write_manifest(out_dir, manifest)
    (out_dir / store.SHARDS_DIR).mkdir(exist_ok=True)

    bounds = [(s, min(s + shard_size, len(items["id"]))) for s in range(0, len(items["id"]), shard_size)]
    todo = [k for k in range(n_shards) if not store.shard_path(out_dir, k).is_file()]
    # The bar counts messages; a shard is scored when the last of its messages comes by.
    stream = ((k, i) for k in todo for i in range(*bounds[k]))
    for k, i in track(stream, "Labelling messages with the teacher", total=sum(bounds[k][1] - bounds[k][0] for k in todo)):
        if i == bounds[k][1] - 1:
            _score_shard(teacher, items, bounds[k], store.shard_path(out_dir, k), batch_size, min_confidence, max_entropy, top_k)

    stats = [store.shard_stats(store.shard_path(out_dir, k)) for k in range(n_shards)]
    counts["filtered_out"] = {reason: sum(s["filtered_out"][reason] for s in stats) for reason in _FILTERS}
    counts["filtered_out_total"] = sum(s["filtered_out_total"] for s in stats)
    counts["written"] = counts["scored"] - counts["filtered_out_total"]
    manifest.update(counts=counts, finished=True)
    store.write_manifest(out_dir, manifest)
    return TransferSet.load(out_dir)


def _messages_sha256(messages: MessageSet) -> str:
    digest = hashlib.sha256()
    for message_id, text in zip(messages.ids, messages.texts):
        digest.update(json.dumps([message_id, text], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _work_list(messages: MessageSet, config: AugmentConfig | None) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Originals then deduplicated augmentations, as columns; and the counts of how they were made."""
    items = {"id": list(messages.ids), "text": list(messages.texts), "origin": [ORIGINAL] * len(messages), "source_id": list(messages.ids)}
    counts: dict[str, Any] = {"originals": len(messages), "augmented": 0, "augment_unchanged": 0, "duplicates_removed": 0}
    if config is not None:
        augmented = augment_texts(messages.texts, config)
        seen = set(messages.texts)
        per_source: dict[int, int] = {}
        for text, origin, source in augmented:
            if text in seen:
                counts["duplicates_removed"] += 1
                continue
            seen.add(text)
            number = per_source[source] = per_source.get(source, -1) + 1
            items["id"].append(f"{messages.ids[source]}#aug{number}")
            items["text"].append(text)
            items["origin"].append(origin)
            items["source_id"].append(messages.ids[source])
        counts["augmented"] = len(augmented)
        counts["augment_unchanged"] = config.factor * len(messages) - len(augmented)
        clashes = set(items["id"][len(messages) :]) & set(messages.ids)
        if clashes:
            raise TextdistillError(
                f"augmented message ids clash with original ids ({sorted(clashes)[:3]}); rename ids that contain '#aug'."
            )
    counts["scored"] = len(items["id"])
    return items, counts


def _check_resumable(out_dir: Path, manifest: dict[str, Any]) -> None:
    existing = store.read_manifest(out_dir)
    if existing is None:
        if out_dir.exists() and any(not p.name.endswith(".tmp") for p in out_dir.iterdir()):
            raise TextdistillError(
                f"{out_dir} is not empty and holds no transfer set manifest. What to do: choose a new or empty output directory."
            )
        return
    changed = [key for key in _IDENTITY if existing.get(key) != manifest[key]]
    if changed:
        details = "; ".join(
            f"{key}: was {json.dumps(existing.get(key))[:120]}, now {json.dumps(manifest[key])[:120]}" for key in changed
        )
        raise TextdistillError(
            f"{out_dir} holds a transfer set made with a different {', '.join(changed)} ({details}). "
            f"Refusing to mix them. What to do: use a new output directory, or delete {out_dir} to start over."
        )
    manifest["created"] = existing["created"]


def _score_shard(
    teacher: TextClassifier,
    items: dict[str, list[str]],
    bounds: tuple[int, int],
    path: Path,
    batch_size: int,
    min_confidence: float | None,
    max_entropy: float | None,
    top_k: int | None,
) -> None:
    """Score one shard in length-sorted batches, filter it and write it."""
    texts = items["text"][bounds[0] : bounds[1]]
    order = np.argsort([len(t) for t in texts], kind="stable")
    logits = np.empty((len(texts), len(teacher.label_space)), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        batch = order[start : start + batch_size]
        logits[batch] = teacher.decision_function([texts[i] for i in batch])
    fails = _filter_failures(logits, teacher.label_space.multi_label, min_confidence, max_entropy)
    keep = np.ones(len(texts), dtype=bool)
    for failed in fails.values():
        keep &= ~failed
    columns = {name: [values[bounds[0] + i] for i in np.flatnonzero(keep)] for name, values in items.items()}
    stats = {
        "n_input": len(texts),
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
