"""The Ray engine: input read by Ray tasks and scored by a pool of Ray actors, on this machine
or on a cluster.

How the work flows, and why:

- **Input, predictions.** Ray Data reads the input files
  (:class:`~textdistill.engines.ray_input.InputFilesDatasource`): one read task per input file
  not yet finished, which reads its file with :meth:`ChunkReader.read`, the local engine's
  reading (textdistill's loader: every bad row named by file, row and column, or skipped and
  counted with ``--skip-bad-rows``), and yields a block per chunk not yet written. A file is
  the unit of reading, so a read task holds one file's messages and the driver none: it keeps
  the file list, their stats and the shards in flight. Read tasks reserve no CPU (reading is
  cheap next to scoring, and by default the actors hold every CPU) and run at most one per
  actor at a time. Like the model directory, the input files must be readable at the same path
  on every node. A read task's error (a bad row) stops the run with the local engine's message.
- **Input, transfer set.** ``textdistill label`` reads its input on the driver and hands over
  the work list: ids unique across the input, augmentations deduplicated against every earlier
  text and the input's hash are properties of the whole input, which per-file reading could
  not check without a second pass. Its unfinished shards become the blocks of a dataset
  (``ray.data.from_arrow``: one block per shard).
- **Scoring.** Ray Data streams the blocks through ``map_batches`` to a fixed pool of stateful
  actors (:class:`ScorerActor`): each loads the model once and scores a shard's worth of rows
  per call with :func:`score_texts_sorted`, the local engine's call, with as many threads as it
  has CPUs (or on its GPU).
- **Output.** Actors send back the logits and the columns the writer needs (a transfer set's
  shard, only its key and each row's position; a prediction chunk, its ids, texts, files and
  rows too). The driver puts each row in its place by (shard key, position) and hands a shard to
  the writer when its last row is in, so shard files, names and contents are the local
  engine's, and the output directory only has to exist on the driver.
- **Failures.** Ray Data restarts an actor that dies and retries its rows (its actor pools
  have ``max_restarts=-1`` and ``max_task_retries=-1`` by default). A row that comes back
  twice lands in the same place, and each shard is written once, atomically, under its own
  name: no row is lost or duplicated. If the driver dies, a rerun skips the written shards, and
  the files whose every chunk is written are not read again.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from textdistill.data.chunks import ChunkReader, FileToRead
from textdistill.engines import ChunkWriter, ShardWriter, score_texts_sorted
from textdistill.errors import DataError, TextdistillError
from textdistill.models.base import load_model
from textdistill.progress import track

INSTALL_HINT = "pip install 'textdistill[ray]'"


def import_ray() -> Any:
    """The ``ray`` module with Ray Data, or an error that names the extra to install."""
    try:
        import ray
        import ray.data  # fails without the [data] extra's dependencies
    except ImportError as exc:
        raise TextdistillError(f"--engine ray needs Ray Data, which is not installed ({exc}). What to do: {INSTALL_HINT}") from None
    return ray


def plan_actors(
    resources: Mapping[str, float], actors: int | None, cpus_per_actor: float, gpus_per_actor: float | None
) -> tuple[int, float]:
    """How many actors to start and how many GPUs each gets, for a cluster with ``resources``.

    GPUs per actor default to 1 when the cluster has GPUs, else 0. Actors default to as many
    as the cluster's GPUs (or, without GPUs, its CPUs) hold at once.
    """
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus >= 1 else 0.0
    if cpus_per_actor <= 0 or gpus_per_actor < 0 or (actors is not None and actors < 1):
        raise TextdistillError(
            f"actors must be at least 1, CPUs per actor above 0 and GPUs per actor at least 0 "
            f"(got {actors}, {cpus_per_actor}, {gpus_per_actor})."
        )
    fit = int(cpus // cpus_per_actor)
    if gpus_per_actor:
        fit = min(fit, int(gpus // gpus_per_actor))
    if fit < 1:
        raise TextdistillError(
            f"the Ray cluster has {cpus:g} CPUs and {gpus:g} GPUs: too few for one actor with {cpus_per_actor:g} CPUs "
            f"and {gpus_per_actor:g} GPUs. What to do: lower --cpus-per-actor / --gpus-per-actor, or add nodes."
        )
    return actors or fit, gpus_per_actor


class ScorerActor:
    """One Ray actor: loads the model once, then scores one batch of rows per call and returns
    their logits with the ``returned`` columns of the batch."""

    def __init__(self, model_dir: str, batch_size: int, threads: int, returned: Sequence[str]) -> None:
        from threadpoolctl import threadpool_limits

        self.model = load_model(model_dir)
        self.batch_size = batch_size
        self.returned = tuple(returned)
        # This process belongs to the actor: limit its thread pools for good.
        threadpool_limits(limits=threads)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        logits = score_texts_sorted(self.model, batch["text"].tolist(), self.batch_size)
        return {**{name: batch[name] for name in self.returned}, "logits": logits}


# Called with a shard's key and its rows' returned columns (and logits), in the shard's order.
_AssembledWriter = Callable[[tuple[int, ...], dict[str, np.ndarray]], None]


@dataclass
class RayEngine:
    """Input read by Ray tasks, and shards scored by ``actors`` Ray actors with
    ``cpus_per_actor`` CPUs (and torch threads) and ``gpus_per_actor`` GPUs each (defaults: see
    :func:`plan_actors`).

    Uses the Ray that this process is already connected to; otherwise connects to ``address``
    (a running cluster, e.g. ``ray://head:10001`` or ``head:6379``), or, without one, to
    ``RAY_ADDRESS`` or else a local Ray it starts with all of this machine's CPUs and stops
    at the end.
    """

    address: str | None = None
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None

    def __post_init__(self) -> None:
        import_ray()  # a missing extra is reported before the input is read, not after

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
        written: set[int] = set()

        def write_shard(key: tuple[int, ...], columns: dict[str, np.ndarray]) -> None:
            write(key[0], columns["logits"])
            written.add(key[0])

        with self._cluster() as (ray, plan):
            dataset = ray.data.from_arrow([_shard_block(k, texts[start:end]) for k, (start, end) in shards.items()])
            largest = max(end - start for start, end in shards.values())
            batches = self._scored(ray, dataset, plan, model_dir, batch_size, largest, returned=("shard", "position", "size"))
            for _ in track(_assemble(batches, ("shard",), write_shard), description, total=sum(end - start for start, end in shards.values())):
                pass
        missing = sorted(set(shards) - written)
        if missing:
            raise TextdistillError(
                f"Ray finished without returning every message of shard(s) {missing[:5]}; they were not written. "
                "What to do: run the same command again to score them."
            )

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
        with self._cluster() as (ray, plan):
            from textdistill.engines.ray_input import BLOCK_SCHEMA, KEY, InputFilesDatasource, chunk_from_columns

            def write_chunk(key: tuple[int, ...], columns: dict[str, np.ndarray]) -> None:
                write(chunk_from_columns(key, columns), columns["logits"])

            # Reading is cheap next to scoring: no CPU reserved, at most a file per actor at a time.
            dataset = ray.data.read_datasource(InputFilesDatasource(reader, files), num_cpus=0, concurrency=plan[0])
            batches = self._scored(ray, dataset, plan, model_dir, batch_size, reader.chunk_size, returned=BLOCK_SCHEMA.names)
            for _ in track(_assemble(batches, KEY, write_chunk), description):
                pass

    @contextmanager
    def _cluster(self) -> Iterator[tuple[Any, tuple[int, float]]]:
        """Ray, connected (started here, and stopped after, when need be), and the plan for its
        cluster: the actors to start and the GPUs each gets."""
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address)
        try:
            yield ray, plan_actors(ray.cluster_resources(), self.actors, self.cpus_per_actor, self.gpus_per_actor)
        finally:
            if started:
                ray.shutdown()

    def _scored(
        self, ray: Any, dataset: Any, plan: tuple[int, float], model_dir: Path, batch_size: int, rows_per_call: int, returned: Sequence[str]
    ) -> Iterator[dict[str, np.ndarray]]:
        """``dataset``'s rows scored by a pool of (actors, GPUs per actor) ``plan``: their logits
        and ``returned`` columns, in batches."""
        n_actors, gpus = plan
        model_dir = str(Path(model_dir).resolve())
        scored = dataset.map_batches(
            ScorerActor,
            fn_constructor_kwargs={"model_dir": model_dir, "batch_size": batch_size, "threads": max(1, int(self.cpus_per_actor)), "returned": returned},
            compute=ray.data.ActorPoolStrategy(size=n_actors),
            num_cpus=self.cpus_per_actor,
            num_gpus=gpus,
            batch_size=rows_per_call,  # about a shard per call
            batch_format="numpy",
        )
        return _batches(ray, scored, model_dir)


def _shard_block(k: int, texts: Sequence[str]) -> pa.Table:
    """A shard of a work list as one Ray block: its index, size, each row's position in it, and the texts."""
    n = len(texts)
    return pa.table(
        {
            "shard": pa.array([k] * n, pa.int32()),
            "position": pa.array(range(n), pa.int32()),
            "size": pa.array([n] * n, pa.int32()),
            "text": pa.array(texts, pa.string()),
        }
    )


# Ray Data's loggers that repeat what we say: that its bars are off, and a failure (each with a
# traceback; ours names the bad row, or includes Ray's report).
_QUIETED = {
    "ray.data._internal.progress": logging.ERROR,
    "ray.data._internal.execution.streaming_executor_state": logging.CRITICAL,
    "ray.data.exceptions": logging.CRITICAL,
}


def _batches(ray: Any, dataset: Any, model_dir: str) -> Iterator[dict[str, np.ndarray]]:
    """The dataset's output batches, with Ray's own progress bars off (ours counts messages).
    Bad input that a read task found is raised as the local engine raises it; any other failure
    as a textdistill error with Ray's report (the worker's traceback) included."""
    context = ray.data.DataContext.get_current()
    bars, context.enable_progress_bars = context.enable_progress_bars, False
    loggers = [logging.getLogger(name) for name in _QUIETED]
    levels = [logger.level for logger in loggers]
    for logger, level in zip(loggers, _QUIETED.values()):
        logger.setLevel(level)
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as error:
        bad_input = _data_error(ray, error)
        if bad_input is not None:
            raise bad_input from None
        raise TextdistillError(
            f"scoring on Ray failed. Ray's report:\n{error}\nWhat to do: if the model failed to load, check that "
            f"{model_dir} is readable at that path on every node and that textdistill and its extras are installed "
            "there; written shards are kept, so running the same command again resumes."
        ) from None
    finally:
        context.enable_progress_bars = bars
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _data_error(ray: Any, error: BaseException | None) -> DataError | None:
    """The bad input error that a Ray task raised, found among the causes of Ray's ``error``."""
    while error is not None:
        if isinstance(error, DataError) and not isinstance(error, ray.exceptions.RayError):
            return error
        error = getattr(error, "cause", None) or error.__cause__
    return None


def _assemble(batches: Iterator[dict[str, np.ndarray]], key: Sequence[str], write: _AssembledWriter) -> Iterator[None]:
    """Put scored rows in their places and write each shard once all its rows are in; rows of
    a shard already written (sent again by a retried task) are left out. A shard is named by
    the values of its ``key`` columns; a row also carries its ``position`` in the shard and the
    shard's ``size``; the writer gets every other column. Yields once per row."""
    pending: dict[tuple[int, ...], dict[str, np.ndarray]] = {}
    filled: dict[tuple[int, ...], np.ndarray] = {}
    written: set[tuple[int, ...]] = set()
    for batch in batches:
        keys = np.stack([batch[name] for name in key], axis=1)
        carried = [name for name in batch if name not in (*key, "position", "size")]
        for shard in np.unique(keys, axis=0):
            k = tuple(shard.tolist())
            if k in written:
                continue
            mine = (keys == shard).all(axis=1)
            where = batch["position"][mine]
            if k not in pending:
                size = int(batch["size"][mine][0])
                pending[k] = {name: _empty_like_rows(batch[name], size) for name in carried}
                filled[k] = np.zeros(size, dtype=bool)
            for name, values in pending[k].items():
                values[where] = batch[name][mine]
            filled[k][where] = True
            if filled[k].all():
                write(k, pending.pop(k))
                del filled[k]
                written.add(k)
        yield from [None] * len(batch["position"])


def _empty_like_rows(values: np.ndarray, n: int) -> np.ndarray:
    """Room for ``n`` rows of a column like ``values``; text as Python objects (a fixed-width
    string dtype would cut longer texts of later batches)."""
    dtype = object if values.dtype.kind in "OUS" else values.dtype
    return np.empty((n, *values.shape[1:]), dtype=dtype)
