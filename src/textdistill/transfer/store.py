"""The transfer set on disk: ``manifest.json`` plus Parquet shards of teacher logits.

``shards/part-NNNNN.parquet`` hold the columns ``id``, ``text``, ``origin``, ``source_id`` and
either ``logits`` (list<float32>, every label) or, when stored top-k, ``top_indices``
(list<int32>) and ``top_logits`` (list<float32>, largest first). Each shard's schema metadata
records how many messages it was cut from and how many filters dropped, so the counts survive
an interrupted run. Directory layout, atomic writes and resuming: :mod:`textdistill.shards`.

Reading top-k shards fills the missing labels so that they carry (almost) no probability:
single-label with the row's smallest stored logit minus 10 (each missing label then has at most
e^-10 of the softmax mass of the least likely stored one); multi-label with
min(-20, smallest stored - 10), as sigmoid(-20) is about 2e-9 and the stored labels stay the
top k.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from textdistill import shards

FORMAT_VERSION = 1
WHAT = "transfer set"
COMMAND = "textdistill label"
SINGLE_LABEL_GAP = 10.0
MULTI_LABEL_FILL = -20.0


def write_shard(
    path: Path,
    columns: dict[str, list[str]],
    logits: np.ndarray,
    top_k: int | None,
    stats: dict[str, Any],
) -> None:
    """Write one shard: string ``columns`` (id, text, origin, source_id) and the logits (n, L)."""
    arrays = {name: pa.array(values, type=pa.string()) for name, values in columns.items()}
    logits = np.asarray(logits, dtype=np.float32)
    if top_k is None:
        arrays["logits"] = shards.list_array(logits, pa.float32())
    else:
        k = min(top_k, logits.shape[1])
        top = np.argsort(-logits, axis=1, kind="stable")[:, :k].astype(np.int32)
        arrays["top_indices"] = shards.list_array(top, pa.int32())
        arrays["top_logits"] = shards.list_array(np.take_along_axis(logits, top, axis=1), pa.float32())
    shards.write_shard(path, arrays, stats)


def dense_from_top_k(indices: np.ndarray, top: np.ndarray, n_labels: int, multi_label: bool) -> np.ndarray:
    """(n, L) logits from the top-k stored per row; see the module docstring for the fill."""
    fill = top.min(axis=1, keepdims=True) - SINGLE_LABEL_GAP
    if multi_label:
        fill = np.minimum(fill, MULTI_LABEL_FILL)
    dense = np.broadcast_to(fill, (len(top), n_labels)).astype(np.float32)
    np.put_along_axis(dense, indices.astype(np.intp), top, axis=1)
    return dense


@dataclass
class TransferSet:
    """Teacher logits for the original and augmented messages, in the order they were scored."""

    ids: list[str]
    texts: list[str]
    origins: list[str]
    source_ids: list[str]
    logits: np.ndarray
    labels: list[str]
    multi_label: bool
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, out_dir: str | Path) -> TransferSet:
        manifest, table = shards.read_finished(Path(out_dir), FORMAT_VERSION, WHAT, COMMAND)
        labels, multi_label = manifest["labels"], manifest["multi_label"]
        strings = {name: table.column(name).to_pylist() for name in ("id", "text", "origin", "source_id")}
        top_k = manifest["options"]["top_k"]
        if top_k is None:
            logits = shards.list_rows(table.column("logits"), len(labels), np.float32)
        else:
            k = min(top_k, len(labels))
            logits = dense_from_top_k(
                shards.list_rows(table.column("top_indices"), k, np.int32),
                shards.list_rows(table.column("top_logits"), k, np.float32),
                len(labels),
                multi_label,
            )
        return cls(
            strings["id"], strings["text"], strings["origin"], strings["source_id"], logits, labels, multi_label, manifest
        )
