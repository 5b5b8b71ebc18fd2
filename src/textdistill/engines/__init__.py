"""Engines: where input is read and a model scores it, shard by shard.

Two kinds of work: :meth:`Engine.run` scores the shards of a work list the caller holds (the
transfer set's, read on the driver); :meth:`Engine.run_files` reads input files with a
:class:`~textdistill.data.chunks.ChunkReader`, one file at a time, and scores their chunks
(predictions). :class:`LocalEngine` does both in this process;
:class:`~textdistill.engines.ray_engine.RayEngine` (``textdistill[ray]``) reads in Ray tasks
and scores in a pool of Ray actors, on this machine or a cluster. Both load the model with
:func:`load_model`, score with :func:`score_texts_sorted`, and hand each shard's logits back to
the caller in this process, which writes it. So the engine decides where reading and the model
run, never what is read or written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from textdistill.data.chunks import Chunk, ChunkReader, FileToRead
from textdistill.errors import TextdistillError
from textdistill.models.base import TextClassifier, load_model
from textdistill.progress import track

# Called with a shard's index and its logits (n, L), rows in work-list order.
ShardWriter = Callable[[int, np.ndarray], None]
# Called with a chunk of an input file and its logits (n, L), rows in the chunk's order.
ChunkWriter = Callable[[Chunk, np.ndarray], None]


def score_texts_sorted(model: TextClassifier, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """(n, L) float32 logits of ``texts``, scored shortest first in batches of ``batch_size``
    (batches of similar length waste less padding in a transformer); rows in input order."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    logits = np.empty((len(texts), len(model.label_space)), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        batch = order[start : start + batch_size]
        logits[batch] = model.decision_function([texts[i] for i in batch])
    return logits


class Engine(Protocol):
    def run(
        self,
        model_dir: Path,
        texts: Sequence[str],
        shards: Mapping[int, tuple[int, int]],
        batch_size: int,
        write: ShardWriter,
        description: str,
    ) -> None:
        """Score ``texts[start:end]`` of every shard in ``shards`` (index -> [start, end)) with
        the model in ``model_dir`` and call ``write`` once per shard, in this process."""

    def run_files(
        self,
        model_dir: Path,
        reader: ChunkReader,
        files: Sequence[FileToRead],
        batch_size: int,
        write: ChunkWriter,
        description: str,
    ) -> None:
        """Read each of ``files`` with ``reader`` (chunks in ``done`` are skipped), score every
        chunk with the model in ``model_dir`` and call ``write`` once per chunk, in this process."""


class LocalEngine:
    """Files read, and shards scored, one after another in this process."""

    def run(
        self,
        model_dir: Path,
        texts: Sequence[str],
        shards: Mapping[int, tuple[int, int]],
        batch_size: int,
        write: ShardWriter,
        description: str,
    ) -> None:
        if not shards:
            return
        model = load_model(model_dir)
        # The bar counts messages; a shard is scored when the last of its messages comes by.
        stream = ((k, i) for k, (start, end) in shards.items() for i in range(start, end))
        for k, i in track(stream, description, total=sum(end - start for start, end in shards.values())):
            start, end = shards[k]
            if i == end - 1:
                write(k, score_texts_sorted(model, texts[start:end], batch_size))

    def run_files(
        self,
        model_dir: Path,
        reader: ChunkReader,
        files: Sequence[FileToRead],
        batch_size: int,
        write: ChunkWriter,
        description: str,
    ) -> None:
        if not files:
            return
        model = load_model(model_dir)

        def scored() -> Iterator[None]:
            """Once per message scored: the bar counts messages (how many, no one knows up front)."""
            for todo in files:
                for chunk in reader.read(todo):
                    write(chunk, score_texts_sorted(model, chunk.texts, batch_size))
                    yield from [None] * len(chunk)

        for _ in track(scored(), description):
            pass


def make_engine(
    name: str,
    *,
    ray_address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: float | None = None,
    gpus_per_actor: float | None = None,
) -> Engine:
    """The engine called ``name`` (``local`` or ``ray``); the other options are Ray's."""
    ray_options = {"ray_address": ray_address, "actors": actors, "cpus_per_actor": cpus_per_actor, "gpus_per_actor": gpus_per_actor}
    if name == "local":
        given = [key for key, value in ray_options.items() if value is not None]
        if given:
            raise TextdistillError(f"{', '.join(given)} only apply to the Ray engine; add --engine ray, or leave them out.")
        return LocalEngine()
    if name == "ray":
        from textdistill.engines.ray_engine import RayEngine

        return RayEngine(address=ray_address, actors=actors, cpus_per_actor=cpus_per_actor or 1.0, gpus_per_actor=gpus_per_actor)
    raise TextdistillError(f"unknown engine {name!r}; choose local or ray.")
