"""What a model costs to run: latency, throughput, peak memory, size on disk, parameters.

Every number is measured on this machine, under an explicit thread count, with the settings
recorded next to it, so that a teacher and its student are compared like for like.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import textdistill
from textdistill.errors import TextdistillError
from textdistill.models.base import TextClassifier
from textdistill.progress import track
from textdistill.threads import effective_threads, limit_threads

INFERENCE_INSTRUCTION_SETS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "amx_bf16",
)
_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_STDERR_LINES = 15


@dataclass(frozen=True)
class CostSettings:
    """How cost is measured; ``measure=False`` skips it (quality only)."""

    measure: bool = True
    threads: int | None = None
    latency_samples: int = 200
    warmup: int = 20
    batch_size: int = 256
    min_messages: int = 2048
    repeats: int = 3


def machine_info() -> dict[str, Any]:
    """The CPU the numbers were measured on: model name, logical cores (``os.cpu_count()``),
    and which SIMD/matrix instruction sets that matter for inference it has (empty if unknown)."""
    cpu, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not cpu:
                cpu = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "instruction_sets": sorted(flags.intersection(INFERENCE_INSTRUCTION_SETS)),
    }


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise TextdistillError(f"{name} must be at least 1, not {value}.")


def size_on_disk_mb(directory: str | Path) -> float:
    """Sum of the sizes of all files under ``directory``, in MiB (2**20 bytes)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TextdistillError(f"{directory} is not a directory, so its size on disk cannot be measured.")
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file()) / 2**20


def _cycled(texts: Sequence[str], n: int) -> list[str]:
    if not texts:
        raise TextdistillError("no texts to measure cost on: give at least one message.")
    return [texts[i % len(texts)] for i in range(n)]


def measure_latency(
    model: TextClassifier,
    texts: Sequence[str],
    *,
    samples: int = 200,
    warmup: int = 20,
    description: str | None = None,
) -> tuple[float, float]:
    """Milliseconds to predict one message (batch of 1): median (p50) and 95th percentile (p95)
    over ``samples`` calls, each timed alone, after ``warmup`` untimed calls. Texts are cycled
    from the first, so this times the messages as given; :func:`measure_latency_by_length`
    times a sample of the data's lengths instead. ``description`` shows a progress bar."""
    _positive("samples", samples)
    p50, p95 = np.percentile(_time_one_by_one(model, _cycled(texts, samples), warmup, description), [50, 95])
    return float(p50), float(p95)


def _time_one_by_one(model: TextClassifier, texts: Sequence[str], warmup: int, description: str | None) -> np.ndarray:
    """Milliseconds of ``model.predict_proba([text])`` for each of ``texts``, after ``warmup``
    untimed calls on them (cycled)."""
    for text in _cycled(texts, warmup):
        model.predict_proba([text])
    durations_ns = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts if description is None else track(texts, description)):
        start = time.perf_counter_ns()
        model.predict_proba([text])
        durations_ns[i] = time.perf_counter_ns() - start
    return durations_ns / 1e6


def length_quartiles(texts: Sequence[str]) -> list[np.ndarray]:
    """Indices of ``texts`` in four groups of (nearly) equal size by length in characters,
    shortest first; ties are split by position, so every group has texts once there are four.
    Fewer than four texts make fewer groups."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    return [group for group in np.array_split(order, 4) if len(group)]


def latency_sample(texts: Sequence[str], samples: int, seed: int = 0) -> list[tuple[int, int]]:
    """``samples`` (quartile, text index) pairs drawn evenly from the length quartiles of
    ``texts`` (:func:`length_quartiles`, numbered from 1), without replacement while a quartile
    has texts left, in a seeded random order so that drift over the run hits every quartile alike."""
    _positive("samples", samples)
    if not texts:
        raise TextdistillError("no texts to measure cost on: give at least one message.")
    rng = np.random.default_rng(seed)
    quartiles = length_quartiles(texts)
    per_quartile = [len(part) for part in np.array_split(np.arange(samples), len(quartiles))]
    drawn = []
    for number, (group, n) in enumerate(zip(quartiles, per_quartile), start=1):
        rounds = max(1, -(-n // len(group)))  # every text of the quartile once before any twice
        picks = np.concatenate([rng.permutation(group) for _ in range(rounds)])[:n]
        drawn += [(number, int(i)) for i in picks]
    return [drawn[i] for i in rng.permutation(len(drawn))]


def measure_latency_by_length(
    model: TextClassifier,
    texts: Sequence[str],
    *,
    samples: int = 200,
    warmup: int = 20,
    seed: int = 0,
    description: str | None = None,
) -> tuple[float, float, list[dict[str, Any]]]:
    """Batch-1 latency at the real lengths of ``texts``: ``samples`` messages drawn evenly from
    their length quartiles (:func:`latency_sample`), each timed alone after ``warmup`` untimed
    calls. Returns p50 and p95 ms over all timed messages and, per quartile, its range of
    characters (over all of ``texts``), the number of timed messages and their p50 / p95 ms."""
    drawn = latency_sample(texts, samples, seed)
    durations_ms = _time_one_by_one(model, [texts[i] for _, i in drawn], warmup, description)
    timed_quartile = np.array([number for number, _ in drawn])
    by_length = []
    for number, group in enumerate(length_quartiles(texts), start=1):
        lengths = [len(texts[i]) for i in group]
        timed = durations_ms[timed_quartile == number]
        p50, p95 = (float(ms) for ms in np.percentile(timed, [50, 95])) if len(timed) else (None, None)
        by_length.append(
            {"quartile": number, "min_chars": min(lengths), "max_chars": max(lengths), "n": len(timed), "p50_ms": p50, "p95_ms": p95}
        )
    p50, p95 = np.percentile(durations_ms, [50, 95])
    return float(p50), float(p95), by_length


def _n_throughput_messages(batch_size: int, min_messages: int) -> int:
    """``min_messages`` rounded up to whole batches."""
    _positive("batch_size", batch_size)
    _positive("min_messages", min_messages)
    return -(-min_messages // batch_size) * batch_size


def measure_throughput(
    model: TextClassifier,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    min_messages: int = 2048,
    repeats: int = 3,
) -> float:
    """Messages per second predicting in batches of ``batch_size``: median over ``repeats`` runs,
    each over ``min_messages`` messages rounded up to whole batches (texts cycled), after one
    untimed warm-up batch."""
    _positive("repeats", repeats)
    n_messages = _n_throughput_messages(batch_size, min_messages)
    messages = _cycled(texts, n_messages)
    batches = [messages[i : i + batch_size] for i in range(0, n_messages, batch_size)]
    model.predict_proba(batches[0])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for batch in batches:
            model.predict_proba(batch)
        rates.append(n_messages / ((time.perf_counter_ns() - start) / 1e9))
    return float(np.median(rates))


def _stderr_tail(stderr: str) -> str:
    lines = stderr.strip().splitlines()[-_STDERR_LINES:]
    return "\n".join("    " + line for line in lines) if lines else "    (nothing on stderr)"


def measure_peak_rss_mb(
    model_dir: str | Path,
    texts: Sequence[str],
    *,
    threads: int | None = None,
    batch_size: int = 256,
    timeout: float = 600,
) -> float:
    """Peak resident memory, in MiB (2**20 bytes), of a fresh Python process that imports
    textdistill, loads the model from ``model_dir`` and predicts every text in batches of
    ``batch_size`` under ``threads`` threads. It includes the interpreter and the libraries the
    model needs: what serving the model alone would take."""
    _positive("batch_size", batch_size)
    if not texts:
        raise TextdistillError("no texts to measure peak memory on: give at least one message.")
    env = os.environ.copy()
    effective = effective_threads(threads)
    # Thread pools of libraries that load after the probe starts (torch, ...) read these.
    env.update({name: str(effective) for name in _THREAD_ENV_VARS})
    # The probe must import the very textdistill this process runs.
    source_root = str(Path(textdistill.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="textdistill-probe-") as tmp:
        texts_file = Path(tmp) / "texts.jsonl"
        texts_file.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
        command = [
            sys.executable, "-m", "textdistill.evaluate.memory_probe", str(model_dir), str(texts_file),
            "--threads", str(effective), "--batch-size", str(batch_size),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            stderr = expired.stderr.decode(errors="replace") if isinstance(expired.stderr, bytes) else expired.stderr
            raise TextdistillError(
                f"the memory probe for {model_dir} did not finish within {timeout:g} s; its stderr ended with:\n"
                f"{_stderr_tail(stderr or '')}\n"
                "  What to do: measure on fewer texts or raise the timeout."
            ) from None
    if done.returncode != 0:
        raise TextdistillError(
            f"the memory probe for {model_dir} failed (exit status {done.returncode}); its stderr ended with:\n"
            f"{_stderr_tail(done.stderr)}\n"
            f"  What to do: check that {model_dir} is a saved textdistill model that loads in this environment: "
            f"{Path(sys.executable).name} -c 'import textdistill; textdistill.load(\"{model_dir}\")'"
        )
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
        peak, n_predicted = float(result["peak_rss_mb"]), int(result["n_predicted"])
    except (IndexError, ValueError, KeyError, TypeError):
        raise TextdistillError(
            f"the memory probe for {model_dir} printed no result line; stdout was {done.stdout[-500:]!r}, "
            f"stderr ended with:\n{_stderr_tail(done.stderr)}\n"
            "  What to do: make sure nothing in the model's loading code writes to stdout."
        ) from None
    if n_predicted != len(texts):
        raise TextdistillError(
            f"the memory probe for {model_dir} predicted {n_predicted} of {len(texts)} texts, so its peak "
            "memory is not trustworthy. The model's predict_proba returned the wrong number of rows."
        )
    return peak


@dataclass
class CostReport:
    """What a model costs on this machine; see :func:`measure_cost` for each number."""

    latency_ms_p50: float
    latency_ms_p95: float
    latency_by_length: list[dict[str, Any]]
    throughput_per_s: float
    peak_rss_mb: float
    size_mb: float
    n_params: int
    threads: int
    settings: dict[str, int] = field(default_factory=dict)
    load_average: dict[str, list[float] | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_cost(
    model: TextClassifier,
    model_dir: str | Path,
    texts: Sequence[str],
    *,
    threads: int | None = None,
    latency_samples: int = 200,
    warmup: int = 20,
    batch_size: int = 256,
    min_messages: int = 2048,
    repeats: int = 3,
) -> CostReport:
    """Measure everything under one thread count (all logical cores when None).

    - ``latency_ms_p50`` / ``latency_ms_p95``: ms per message at batch 1, over ``latency_samples``
      messages drawn evenly from the length quartiles of ``texts``; ``latency_by_length``: the
      same per quartile (:func:`measure_latency_by_length`);
    - ``throughput_per_s``: messages per second in batches of ``batch_size`` (:func:`measure_throughput`);
    - ``peak_rss_mb``: peak MiB of a fresh process loading ``model_dir`` and predicting all
      ``texts`` in batches of ``batch_size`` (:func:`measure_peak_rss_mb`);
    - ``size_mb``: MiB of files in ``model_dir``; ``n_params``: learned parameters;
    - ``settings``: the sample counts behind the numbers;
    - ``load_average``: the machine's 1/5/15-minute load average before and after measuring
      (None where the OS has none): other work on the machine slows every number down.
    """
    load_before = _load_average()
    with limit_threads(threads) as effective:
        p50, p95, by_length = measure_latency_by_length(
            model, texts, samples=latency_samples, warmup=warmup, description="Measuring latency (batch 1)"
        )
        throughput = measure_throughput(model, texts, batch_size=batch_size, min_messages=min_messages, repeats=repeats)
        peak = measure_peak_rss_mb(model_dir, texts, threads=effective, batch_size=batch_size)
    load_after = _load_average()
    return CostReport(
        latency_ms_p50=p50,
        latency_ms_p95=p95,
        latency_by_length=by_length,
        throughput_per_s=throughput,
        peak_rss_mb=peak,
        size_mb=size_on_disk_mb(model_dir),
        n_params=model.n_params,
        threads=effective,
        settings={
            "latency_samples": latency_samples,
            "warmup": warmup,
            "throughput_batch_size": batch_size,
            "throughput_messages": _n_throughput_messages(batch_size, min_messages),
            "repeats": repeats,
        },
        load_average={"before": load_before, "after": load_after},
    )


def _load_average() -> list[float] | None:
    try:
        return [round(load, 2) for load in os.getloadavg()]
    except OSError:
        return None
