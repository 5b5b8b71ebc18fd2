"""Benchmark: messages/s of the local engine against the Ray engine, on this machine.

    python benchmarks/scale.py [--teacher-texts 2000] [--student-texts 20000] [--repeats 3]

Jobs, each run ``--repeats`` times per engine set-up, set-ups interleaved within a round:
- the mpnet-base teacher (``teacher-full``) labels the first ``--teacher-texts`` BANKING77 train
  texts (``textdistill label``'s ``label_messages``: shards of 128, batches of 64);
- each student predicts ``--student-texts`` texts (train cycled, written to one Parquet file;
  ``predict_files``: shards of 1024, batches of 256).
Set-ups: local (this process, torch and BLAS on every core), Ray with one actor per core (1 CPU
and 1 thread each), and Ray with one actor holding every core. One local Ray serves every Ray
run; its start-up is timed once and left out of the jobs' times.

Two rates per job: **job** = messages / wall time of the whole call (model loading, scoring,
writing shards); **steady** = messages written after every worker (the local process, or each
actor) had written its first shard, per second from then to the last write: no model loading,
the rate a long job approaches. The steady rate per actor is what docs/scaling.md multiplies
out. Medians over the repeats; a JSON line per
run goes to ``--out``; a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Timed:
    """An engine wrapper that records when each shard was written, and how many rows it had."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.writes: list[tuple[float, int]] = []

    def run(self, model_dir, texts, shards, batch_size, write, description):
        self.engine.run(model_dir, texts, shards, batch_size, self._timed(write), description)

    def run_files(self, model_dir, reader, files, batch_size, write, description):
        self.engine.run_files(model_dir, reader, files, batch_size, self._timed(write), description)

    def _timed(self, write):
        def timed_write(shard, logits):
            write(shard, logits)
            self.writes.append((time.perf_counter(), len(logits)))

        return timed_write

    def steady_rate(self, workers: int) -> float:
        """Rows written after every worker's first shard, per second from then to the last write."""
        start, last = self.writes[workers - 1][0], self.writes[-1][0]
        return sum(n for _, n in self.writes[workers:]) / (last - start)


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "banking77")
    parser.add_argument("--teacher-texts", type=int, default=2000)
    parser.add_argument("--student-texts", type=int, default=20000)
    parser.add_argument("--students", nargs="*", default=["static", "bilstm"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "runs" / "scale.jsonl")
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    from textdistill.data.messages import DataSpec, MessageSet, load_messages
    from textdistill.engines import LocalEngine
    from textdistill.engines.ray_engine import RayEngine
    from textdistill.evaluate.cost import machine_info
    from textdistill.predict import predict_files
    from textdistill.progress import set_quiet
    from textdistill.transfer import label_messages

    set_quiet(True)
    cores = os.cpu_count() or 1
    train = load_messages(args.data / "train.csv", DataSpec(), annotated=False)

    def first(n: int) -> MessageSet:
        picks = [i % len(train) for i in range(n)]
        texts = [train.texts[i] for i in picks]
        return MessageSet(texts, [f"m{i}" for i in range(n)], [None] * n, list(range(1, n + 1)), "banking77-train", None)

    jobs = [("teacher (mpnet-base)", args.runs / "teacher-full", first(args.teacher_texts), "label")] if args.teacher_texts else []  # 0: students only
    jobs += [(f"student ({name})", args.runs / f"student-{name}", first(args.student_texts), "predict") for name in args.students]
    setups = {  # name: (engine, workers)
        f"local, {cores} threads": (LocalEngine, 1),
        f"Ray, {cores} actors x 1 CPU": (lambda: RayEngine(actors=cores, cpus_per_actor=1), cores),
        f"Ray, 1 actor x {cores} CPUs": (lambda: RayEngine(actors=1, cpus_per_actor=cores), 1),
    }
    print(f"machine: {machine_info()}, load average before: {load_average()}", file=sys.stderr)
    started = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False)
    ray_start = time.perf_counter() - started

    results: dict[tuple[str, str], list[dict]] = {}
    with args.out.open("a", encoding="utf-8") as log, tempfile.TemporaryDirectory() as scratch:
        student_input = Path(scratch) / "student-texts.parquet"  # predict reads files
        pq.write_table(pa.table({"text": first(args.student_texts).texts}), student_input)
        for repeat in range(args.repeats):
            for job, model_dir, messages, kind in jobs:
                for setup, (make, workers) in setups.items():
                    engine = Timed(make())
                    out = Path(scratch) / f"run-{sum(map(len, results.values()))}"  # a fresh directory per run
                    load_before = load_average()
                    t0 = time.perf_counter()
                    if kind == "label":
                        label_messages(model_dir, messages, out, shard_size=128, batch_size=64, engine=engine)
                    else:
                        predict_files(model_dir, student_input, out, shard_size=1024, batch_size=256, engine=engine)
                    seconds = time.perf_counter() - t0
                    row = {
                        "job": job, "setup": setup, "repeat": repeat, "messages": len(messages), "seconds": round(seconds, 2),
                        "job_rate": round(len(messages) / seconds, 1), "steady_rate": round(engine.steady_rate(workers), 1), "workers": workers,
                        "load_before": load_before, "load_after": load_average(),
                    }
                    results.setdefault((job, setup), []).append(row)
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    print(json.dumps(row), file=sys.stderr, flush=True)
    ray.shutdown()

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE, check=True).stdout.strip()
    print(f"\nRay start-up (once, not in the jobs): {ray_start:.1f} s; commit {commit}; load average after: {load_average()}\n")
    print("| job | set-up | messages | job msgs/s | steady msgs/s | steady per actor |")
    print("|---|---|---:|---:|---:|---:|")
    for (job, setup), rows in results.items():
        job_rate = statistics.median(r["job_rate"] for r in rows)
        steady = statistics.median(r["steady_rate"] for r in rows)
        per_actor = f"{steady / rows[0]['workers']:,.0f}" if setup.startswith("Ray") else "—"
        print(f"| {job} | {setup} | {rows[0]['messages']:,} | {job_rate:,.0f} | {steady:,.0f} | {per_actor} |")


if __name__ == "__main__":
    main()
