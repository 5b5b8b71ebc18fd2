"""The transfer set on disk: ``manifest.json`` plus Parquet shards of teacher logits.

``shards/part-NNNNN.parquet`` hold the columns ``id``, ``text``, ``origin``, ``source_id`` and
either ``logits`` (list<float32>, every label) or, when stored top-k, ``top_indices``
(list<int32>) and ``top_logits`` (list<float32>, largest first). Each shard's schema metadata
records how many messages it was cut from and how many filters dropped, so the counts survive
an interrupted run. Files are written to a temporary name and renamed into place, so a shard
either exists whole or not at all.

Reading top-k shards fills the missing labels so that they carry (almost) no probability:
single-label with the row's smallest stored logit minus 10 (each missing label then has at most
e^-10 of the softmax mass of the least likely stored one); multi-label with
min(-20, smallest stored - 10), as sigmoid(-20) is about 2e-9 and the stored labels stay the
top k.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textdistill.errors import TextdistillError

MANIFEST_FILE = "manifest.json"
SHARDS_DIR = "shards"
FORMAT_VERSION = 1
_META_KEY = b"textdistill"
SINGLE_LABEL_GAP = 10.0
MULTI_LABEL_FILL = -20.0


def shard_path(out_dir: Path, index: int) -> Path:
    return out_dir / SHARDS_DIR / f"part-{index:05d}.parquet"


def _replace_atomically(path: Path, write) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def remove_partial_files(out_dir: Path) -> None:
    """Delete temporary files an interrupted run left behind."""
    for leftover in [*out_dir.glob(".*.tmp"), *(out_dir / SHARDS_DIR).glob(".*.tmp")]:
        leftover.unlink()


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    _replace_atomically(out_dir / MANIFEST_FILE, lambda p: p.write_text(text, encoding="utf-8"))


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest, or None when ``out_dir`` has none."""
    path = out_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TextdistillError(f"{path} is not valid JSON ({exc}); delete {out_dir} and label again.") from None
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise TextdistillError(f"{path} was written by a newer textdistill; upgrade textdistill.")
    return manifest


def _list_array(rows: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    n, width = rows.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, pa.array(rows.reshape(-1), type=value_type))


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
        arrays["logits"] = _list_array(logits, pa.float32())
    else:
        k = min(top_k, logits.shape[1])
        top = np.argsort(-logits, axis=1, kind="stable")[:, :k].astype(np.int32)
        arrays["top_indices"] = _list_array(top, pa.int32())
        arrays["top_logits"] = _list_array(np.take_along_axis(logits, top, axis=1), pa.float32())
    table = pa.table(arrays).replace_schema_metadata({_META_KEY: json.dumps(stats).encode("utf-8")})
    _replace_atomically(path, lambda p: pq.write_table(table, p))


def shard_stats(path: Path) -> dict[str, Any]:
    """The counts recorded with a shard (without reading its rows)."""
    return json.loads(pq.read_schema(path).metadata[_META_KEY])


def _rows(column: pa.ChunkedArray, width: int, dtype) -> np.ndarray:
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return values.astype(dtype, copy=False).reshape(-1, width)


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
        out_dir = Path(out_dir)
        manifest = read_manifest(out_dir)
        if manifest is None:
            raise TextdistillError(f"{out_dir} is not a transfer set: it has no {MANIFEST_FILE}. Run `textdistill label` first.")
        if not manifest["finished"]:
            raise TextdistillError(
                f"the transfer set in {out_dir} is unfinished (the labelling run was interrupted). "
                "What to do: rerun `textdistill label` with the same arguments to finish it; done shards are kept."
            )
        paths = [shard_path(out_dir, i) for i in range(manifest["n_shards"])]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise TextdistillError(
                f"the transfer set in {out_dir} lacks shard(s) {', '.join(missing[:5])}. "
                "What to do: rerun `textdistill label` with the same arguments to rewrite them."
            )
        table = pa.concat_tables([pq.read_table(p) for p in paths])
        labels, multi_label = manifest["labels"], manifest["multi_label"]
        strings = {name: table.column(name).to_pylist() for name in ("id", "text", "origin", "source_id")}
        top_k = manifest["options"]["top_k"]
        if top_k is None:
            logits = _rows(table.column("logits"), len(labels), np.float32)
        else:
            k = min(top_k, len(labels))
            logits = dense_from_top_k(
                _rows(table.column("top_indices"), k, np.int32),
                _rows(table.column("top_logits"), k, np.float32),
                len(labels),
                multi_label,
            )
        return cls(
            strings["id"], strings["text"], strings["origin"], strings["source_id"], logits, labels, multi_label, manifest
        )
