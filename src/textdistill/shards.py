"""Resumable output directories: ``manifest.json`` plus ``shards/part-*.parquet``.

The transfer set (``textdistill label``) and batch predictions (``textdistill predict``) are
both written this way. A shard is named by its key: an index (``part-NNNNN.parquet``; the
transfer set cuts its work list into shards of ``shard_size``, shard k holding items
[k * shard_size, (k + 1) * shard_size)) or a tuple of indices (``part-FFFFF-CCCCC.parquet``:
predictions, chunk C of input file F). Every file is written to a temporary name and renamed
into place, so a shard exists whole or not at all, whichever engine or process wrote it, and a
rerun skips the shards already there. The manifest records what produced the output: a rerun
that would write something else (a different value of any ``identity`` key) is refused, so one
directory never mixes two runs. Each shard's schema metadata can carry counts (``stats``) that
must survive an interrupted run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from textdistill.errors import DataError, TextdistillError

MANIFEST_FILE = "manifest.json"
SHARDS_DIR = "shards"
_META_KEY = b"textdistill"
_SHARD_NAME = re.compile(r"part-(\d+(?:-\d+)*)\.parquet")

ShardKey = int | tuple[int, ...]


def shard_path(out_dir: Path, key: ShardKey) -> Path:
    """Where the shard with ``key`` (an index, or a tuple of indices) is written."""
    indices = key if isinstance(key, tuple) else (key,)
    return out_dir / SHARDS_DIR / f"part-{'-'.join(f'{i:05d}' for i in indices)}.parquet"


def written_shards(out_dir: Path) -> list[tuple[int, ...]]:
    """The keys of the shards in ``out_dir``, as tuples of indices, sorted."""
    names = (_SHARD_NAME.fullmatch(p.name) for p in (out_dir / SHARDS_DIR).glob("part-*.parquet"))
    return sorted(tuple(int(i) for i in name[1].split("-")) for name in names if name)


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
    written = manifest.get("format_version", 0)
    if written > format_version:
        raise TextdistillError(f"{path} was written by a newer textdistill; upgrade textdistill.")
    if written < format_version:
        raise TextdistillError(
            f"{path} was written by an older textdistill (format {written}; this one reads format {format_version}). "
            f"What to do: run the command again into a new directory, or delete {out_dir}."
        )
    return manifest


def start(out_dir: Path, manifest: dict[str, Any], identity: tuple[str, ...], what: str) -> list[int]:
    """:func:`prepare` ``out_dir`` and return the shards of ``range(manifest["n_shards"])`` still
    to write."""
    prepare(out_dir, manifest, identity, what)
    return [k for k in range(manifest["n_shards"]) if not shard_path(out_dir, k).is_file()]


def prepare(out_dir: Path, manifest: dict[str, Any], identity: tuple[str, ...], what: str) -> None:
    """Prepare ``out_dir`` for ``manifest``: fresh, or a resumable run of the same thing (the
    same values of the ``identity`` keys). ``what`` names the output in errors ("transfer set")."""
    existing = read_manifest(out_dir, manifest["format_version"])
    if existing is None:
        if out_dir.exists() and any(not p.name.endswith(".tmp") for p in out_dir.iterdir()):
            raise TextdistillError(
                f"{out_dir} is not empty and holds no {what} manifest. What to do: choose a new or empty output directory."
            )
    else:
        changed = [key for key in identity if existing.get(key) != manifest[key]]
        if changed:
            details = "; ".join(_first_difference(key, existing.get(key), manifest[key]) for key in changed)
            raise TextdistillError(
                f"{out_dir} holds a {what} made with a different {', '.join(changed)} ({details}). "
                f"Refusing to mix them. What to do: use a new output directory, or delete {out_dir} to start over."
            )
        manifest["created"] = existing["created"]
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_partial_files(out_dir)
    write_manifest(out_dir, manifest)
    (out_dir / SHARDS_DIR).mkdir(exist_ok=True)


def _first_difference(where: str, old: Any, new: Any) -> str:
    """Where two manifest values first differ, and how: ``options.top_k: was 5, now 3``. A list
    item that differs is shown whole (``source.files[1]: was {...}, now {...}``)."""
    while isinstance(old, dict) and isinstance(new, dict) and old.keys() == new.keys():
        key = next(k for k in old if old[k] != new[k])
        where, old, new = f"{where}.{key}", old[key], new[key]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        i = next(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
        where, old, new = f"{where}[{i}]", old[i], new[i]
    return f"{where}: was {json.dumps(old, ensure_ascii=False)[:300]}, now {json.dumps(new, ensure_ascii=False)[:300]}"


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


# What a damaged Parquet file makes pyarrow (and reading its metadata) raise.
_UNREADABLE = (pa.ArrowException, OSError, ValueError, KeyError, TypeError)


def damaged_shard(path: Path, error: Exception, command: str | None) -> DataError:
    """The error for a shard that cannot be read: which one, and that a rerun rewrites it."""
    rerun = f"run `{command}` again" if command else "run the command that wrote it again"
    return DataError(
        f"cannot be read ({type(error).__name__}: {error}); the shard is damaged or cut short.",
        file=path,
        hint=f"delete {path} and {rerun} with the same arguments: it writes that shard again and keeps the others.",
    )


def shard_stats(path: Path, command: str | None = None) -> dict[str, Any]:
    """The counts recorded with a shard (without reading its rows); ``command`` wrote it."""
    try:
        return json.loads(pq.read_schema(path).metadata[_META_KEY])
    except _UNREADABLE as exc:
        raise damaged_shard(path, exc, command) from None


def read_finished(out_dir: Path, format_version: int, what: str, command: str) -> tuple[dict[str, Any], pa.Table]:
    """The manifest and all rows of a finished output directory, in work-list order."""
    manifest = finished_manifest(out_dir, format_version, what, command)
    return manifest, read_shards(out_dir, range(manifest["n_shards"]), what, command)


def finished_manifest(out_dir: Path, format_version: int, what: str, command: str) -> dict[str, Any]:
    """The manifest of a finished output directory; an error when there is none or the run
    that wrote it was interrupted."""
    manifest = read_manifest(out_dir, format_version)
    if manifest is None:
        raise TextdistillError(f"{out_dir} is not a {what}: it has no {MANIFEST_FILE}. Run `{command}` first.")
    if not manifest["finished"]:
        raise TextdistillError(
            f"the {what} in {out_dir} is unfinished (the run was interrupted). "
            f"What to do: rerun `{command}` with the same arguments to finish it; done shards are kept."
        )
    return manifest


def read_shards(out_dir: Path, keys: Iterable[ShardKey], what: str, command: str) -> pa.Table:
    """The rows of the shards with ``keys``, in that order; an error naming those missing."""
    paths = [shard_path(out_dir, key) for key in keys]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise TextdistillError(
            f"the {what} in {out_dir} lacks shard(s) {', '.join(missing[:5])}. "
            f"What to do: rerun `{command}` with the same arguments to rewrite them."
        )
    return pa.concat_tables([_read_shard(p, command) for p in paths])


def _read_shard(path: Path, command: str) -> pa.Table:
    try:
        return pq.read_table(path)
    except _UNREADABLE as exc:
        raise damaged_shard(path, exc, command) from None
