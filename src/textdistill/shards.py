"""Resumable output directories: ``manifest.json`` plus ``shards/part-NNNNN.parquet``.

The transfer set (``textdistill label``) and batch predictions (``textdistill predict``) are
both written this way. The work is a fixed list of messages cut into shards of ``shard_size``;
shard k holds work items [k * shard_size, (k + 1) * shard_size). Every file is written to a
temporary name and renamed into place, so a shard exists whole or not at all, whichever engine
or process wrote it, and a rerun skips the shards already there. The manifest records what
produced the output: a rerun that would write something else (a different value of any
``identity`` key) is refused, so one directory never mixes two runs. Each shard's schema
metadata can carry counts (``stats``) that must survive an interrupted run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textdistill.errors import TextdistillError

MANIFEST_FILE = "manifest.json"
SHARDS_DIR = "shards"
_META_KEY = b"textdistill"


def shard_path(out_dir: Path, index: int) -> Path:
    return out_dir / SHARDS_DIR / f"part-{index:05d}.parquet"


def shard_bounds(n_items: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, end) of each shard of a work list of ``n_items``."""
    return [(start, min(start + shard_size, n_items)) for start in range(0, n_items, shard_size)]


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` to a temporary name beside ``path``, then rename it into place."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)


def remove_partial_files(out_dir: Path) -> None:
    """Delete temporary files an interrupted run left behind."""
    for leftover in [*out_dir.glob(".*.tmp"), *(out_dir / SHARDS_DIR).glob(".*.tmp")]:
        leftover.unlink()


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    replace_atomically(out_dir / MANIFEST_FILE, lambda p: p.write_text(text, encoding="utf-8"))


def read_manifest(out_dir: Path, format_version: int) -> dict[str, Any] | None:
    """The manifest, or None when ``out_dir`` has none."""
    path = out_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TextdistillError(f"{path} is not valid JSON ({exc}); delete {out_dir} and run the command again.") from None
    if manifest.get("format_version", 0) > format_version:
        raise TextdistillError(f"{path} was written by a newer textdistill; upgrade textdistill.")
    return manifest


def start(out_dir: Path, manifest: dict[str, Any], identity: tuple[str, ...], what: str) -> list[int]:
    """Prepare ``out_dir`` for ``manifest`` (fresh, or a resumable run of the same thing) and
    return the shards still to write. ``what`` names the output in errors ("transfer set")."""
    existing = read_manifest(out_dir, manifest["format_version"])
    if existing is None:
        if out_dir.exists() and any(not p.name.endswith(".tmp") for p in out_dir.iterdir()):
            raise TextdistillError(
                f"{out_dir} is not empty and holds no {what} manifest. What to do: choose a new or empty output directory."
            )
    else:
        changed = [key for key in identity if existing.get(key) != manifest[key]]
        if changed:
            details = "; ".join(
                f"{key}: was {json.dumps(existing.get(key))[:120]}, now {json.dumps(manifest[key])[:120]}" for key in changed
            )
            raise TextdistillError(
                f"{out_dir} holds a {what} made with a different {', '.join(changed)} ({details}). "
                f"Refusing to mix them. What to do: use a new output directory, or delete {out_dir} to start over."
            )
        manifest["created"] = existing["created"]
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_partial_files(out_dir)
    write_manifest(out_dir, manifest)
    (out_dir / SHARDS_DIR).mkdir(exist_ok=True)
    return [k for k in range(manifest["n_shards"]) if not shard_path(out_dir, k).is_file()]


def list_array(rows: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    """An (n, width) matrix as a list column of n rows."""
    n, width = rows.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * width)
    return pa.ListArray.from_arrays(offsets, pa.array(rows.reshape(-1), type=value_type))


def list_rows(column: pa.ChunkedArray, width: int, dtype) -> np.ndarray:
    """A list column of equal-length rows as an (n, width) matrix."""
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return values.astype(dtype, copy=False).reshape(-1, width)


def write_shard(path: Path, arrays: dict[str, pa.Array], stats: dict[str, Any]) -> None:
    """Write one shard atomically, with ``stats`` in its schema metadata."""
    table = pa.table(arrays).replace_schema_metadata({_META_KEY: json.dumps(stats).encode("utf-8")})
    replace_atomically(path, lambda p: pq.write_table(table, p))


def shard_stats(path: Path) -> dict[str, Any]:
    """The counts recorded with a shard (without reading its rows)."""
    return json.loads(pq.read_schema(path).metadata[_META_KEY])


def read_finished(out_dir: Path, format_version: int, what: str, command: str) -> tuple[dict[str, Any], pa.Table]:
    """The manifest and all rows of a finished output directory, in work-list order."""
    manifest = read_manifest(out_dir, format_version)
    if manifest is None:
        raise TextdistillError(f"{out_dir} is not a {what}: it has no {MANIFEST_FILE}. Run `{command}` first.")
    if not manifest["finished"]:
        raise TextdistillError(
            f"the {what} in {out_dir} is unfinished (the run was interrupted). "
            f"What to do: rerun `{command}` with the same arguments to finish it; done shards are kept."
        )
    paths = [shard_path(out_dir, k) for k in range(manifest["n_shards"])]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise TextdistillError(
            f"the {what} in {out_dir} lacks shard(s) {', '.join(missing[:5])}. "
            f"What to do: rerun `{command}` with the same arguments to rewrite them."
        )
    return manifest, pa.concat_tables([pq.read_table(p) for p in paths])
