"""The Ray engine: shards scored by a pool of Ray actors, on this machine or on a cluster.

How the work flows, and why:

- **Input.** The command reads and validates the input with textdistill's own loader, in the
  process that runs it (the driver), and builds the work list exactly as the local engine
  does. Ids must be unique across the whole file, every bad row is named by file, row and
  column (or skipped and counted with ``--skip-bad-rows``), augmentations are deduplicated
  against every earlier text, and the manifest holds a hash of the whole input: properties of
  the whole file that per-block reading with ``ray.data.read_csv`` / ``read_json`` /
  ``read_parquet`` could not check without a second pass over it. Reading is cheap next to
  scoring (docs/scaling.md has the numbers), so it stays on the driver.
- **Sharding.** The unfinished shards of the work list become the blocks of one Ray dataset
  (``ray.data.from_arrow``: one block per shard, columns ``shard``, ``row``, ``text``). Ray
  Data streams them through ``map_batches`` to a fixed pool of stateful actors
  (:class:`ScorerActor`): each loads the model once and scores one shard per call with
  :func:`score_texts_sorted`, the local engine's call, with as many threads as it has CPUs (or
  on its GPU).
- **Output.** Actors send back only (shard, row, logits). The driver puts each row in its
  place and hands a shard to the writer when its last row is in, so shard files, names and
  contents are the local engine's, and the output directory only has to exist on the driver;
  the model directory must be readable at the same path on every node.
- **Failures.** Ray Data restarts an actor that dies and retries its shard (its actor pools
  have ``max_restarts=-1`` and ``max_task_retries=-1`` by default). A row that comes back
  twice lands in the same place, and each shard is written once, atomically, under its own
  name: no row is lost or duplicated. If the driver dies, a rerun skips the written shards.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from textdistill.engines import ShardWriter, score_texts_sorted
from textdistill.errors import TextdistillError
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
    """One Ray actor: loads the model once, then scores one batch of rows per call."""

    def __init__(self, model_dir: str, batch_size: int, threads: int) -> None:
        from threadpoolctl import threadpool_limits

        self.model = load_model(model_dir)
        self.batch_size = batch_size
        # This process belongs to the actor: limit its thread pools for good.
        threadpool_limits(limits=threads)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        logits = score_texts_sorted(self.model, batch["text"].tolist(), self.batch_size)
        return {"shard": batch["shard"], "row": batch["row"], "logits": logits}


@dataclass
class RayEngine:
    """Shards scored by ``actors`` Ray actors with ``cpus_per_actor`` CPUs (and torch threads)
    and ``gpus_per_actor`` GPUs each (defaults: see :func:`plan_actors`).

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
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address)
        try:
            n_actors, gpus = plan_actors(ray.cluster_resources(), self.actors, self.cpus_per_actor, self.gpus_per_actor)
            blocks = [_shard_block(k, texts[start:end]) for k, (start, end) in shards.items()]
            model_dir = str(Path(model_dir).resolve())
            scored = ray.data.from_arrow(blocks).map_batches(
                ScorerActor,
                fn_constructor_kwargs={"model_dir": model_dir, "batch_size": batch_size, "threads": max(1, int(self.cpus_per_actor))},
                compute=ray.data.ActorPoolStrategy(size=n_actors),
                num_cpus=self.cpus_per_actor,
                num_gpus=gpus,
                batch_size=max(end - start for start, end in shards.values()),  # a shard per call
                batch_format="numpy",
            )
            rows = _assemble(_batches(ray, scored, model_dir), shards, write)
            for _ in track(rows, description, total=sum(end - start for start, end in shards.values())):
                pass
        finally:
            if started:
                ray.shutdown()


def _shard_block(k: int, texts: Sequence[str]) -> pa.Table:
    """One shard as one Ray block: its index, each row's place in it, and the texts."""
    return pa.table({"shard": pa.array([k] * len(texts), pa.int32()), "row": pa.array(range(len(texts)), pa.int32()), "text": pa.array(texts, pa.string())})


def _batches(ray: Any, dataset: Any, model_dir: str) -> Iterator[dict[str, np.ndarray]]:
    """The dataset's output batches, with Ray's own progress bars off (ours counts messages)
    and a failure reported as a textdistill error, Ray's report (with the worker's traceback)
    included."""
    context = ray.data.DataContext.get_current()
    bars, context.enable_progress_bars = context.enable_progress_bars, False
    notice = logging.getLogger("ray.data._internal.progress")  # says the bars are off
    level = notice.level
    notice.setLevel(logging.ERROR)
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as error:
        raise TextdistillError(
            f"scoring on Ray failed. Ray's report:\n{error}\nWhat to do: if the model failed to load, check that "
            f"{model_dir} is readable at that path on every node and that textdistill and its extras are installed "
            "there; written shards are kept, so running the same command again resumes."
        ) from None
    finally:
        context.enable_progress_bars = bars
        notice.setLevel(level)


def _assemble(
    batches: Iterator[dict[str, np.ndarray]], shards: Mapping[int, tuple[int, int]], write: ShardWriter
) -> Iterator[None]:
    """Put scored rows in their places and write each shard once all its rows are in; rows of
    a shard already written (sent again by a retried task) are left out. Yields once per row."""
    logits: dict[int, np.ndarray] = {}
    filled: dict[int, np.ndarray] = {}
    written: set[int] = set()
    for batch in batches:
        for k in np.unique(batch["shard"]).tolist():
            if k in written:
                continue
            mine = batch["shard"] == k
            if k not in logits:
                size = shards[k][1] - shards[k][0]
                logits[k] = np.empty((size, batch["logits"].shape[1]), dtype=np.float32)
                filled[k] = np.zeros(size, dtype=bool)
            logits[k][batch["row"][mine]] = batch["logits"][mine]
            filled[k][batch["row"][mine]] = True
            if filled[k].all():
                write(k, logits.pop(k))
                del filled[k]
                written.add(k)
        yield from [None] * len(batch["row"])
    missing = sorted(set(shards) - written)
    if missing:
        raise TextdistillError(
            f"Ray finished without returning every message of shard(s) {missing[:5]}; they were not written. "
            "What to do: run the same command again to score them."
        )
