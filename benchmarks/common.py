"""Helpers the benchmark scripts share: running the CLI, and the texts a teacher labels."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "textdistill"]
# Student name -> its `textdistill distill` options.
STUDENTS = {
    "static": ["--student", "static"],
    "bilstm": ["--student", "bilstm"],
    "minilm-l3": ["--student", "transformer", "--set", "encoder=minilm-l3", "--set", "max_length=64"],
    "minilm-l6": ["--student", "transformer", "--set", "encoder=minilm-l6", "--set", "max_length=64"],
}


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def read_rows(path: Path) -> list[dict]:
    """A CSV file's rows as dicts."""
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict], columns: list[str] | tuple[str, ...] = ("text", "label")) -> Path:
    """``rows`` as a CSV of ``columns`` (other keys left out), directories made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def finished(transfer: Path) -> bool:
    manifest = transfer / "manifest.json"
    return manifest.exists() and json.loads(manifest.read_text())["finished"]


def seeded_split(train: Path):
    """Train's annotated messages as (kept, validation): the seeded validation split (10 %,
    seed 0) that teachers and students hold out by default."""
    from textdistill.data.messages import DataSpec, load_messages
    from textdistill.data.split import train_validation_split

    return train_validation_split(load_messages(train, DataSpec()).annotated(), 0.1, 0)


def transfer_texts(train: Path, out: Path) -> Path:
    """Train minus the seeded validation split, as a one-column CSV of texts for `textdistill label`."""
    path = out / "transfer_texts.csv"
    if not path.exists():
        kept, _ = seeded_split(train)
        out.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text"])
            writer.writerows([t] for t in kept.texts)
    return path


def distill_students(teacher: Path, transfers: list[Path], train: Path, runs: Path, names: list[str], suffix: str = "") -> dict[str, Path]:
    """Distil each named student into ``runs/student-NAME<suffix>`` unless it is there already."""
    models = {}
    sources = [option for path in transfers for option in ("--transfer", str(path))]
    for name in names:
        out = runs / f"student-{name}{suffix}"
        if not (out / "manifest.json").exists():
            run([*CLI, "distill", "--teacher", str(teacher), *sources, "--train", str(train), *STUDENTS[name], "--out", str(out), "--quiet"])
        models[name] = out
    return models


def evaluate(model_dir: Path, test: Path, out: Path, name: str, threads: int, repeats: int) -> dict:
    """Median cost over ``repeats`` evaluations (quality is deterministic)."""
    results = []
    for repeat in range(repeats):
        path = out / f"{name}.{repeat}.json"
        if not path.exists():
            run([*CLI, "evaluate", str(model_dir), "--data", str(test), "--json", str(path), "--name", name, "--threads", str(threads), "--quiet"])
        results.append(json.loads(path.read_text()))
    merged = dict(results[0])
    for key in ("latency_ms_p50", "latency_ms_p95", "throughput_per_s", "peak_rss_mb"):
        merged[key] = statistics.median(r[key] for r in results)
    (out / f"{name}.json").write_text(json.dumps(merged, indent=2))
    return merged
