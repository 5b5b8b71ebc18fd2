"""Benchmark: distillation when labels are scarce (BANKING77, labels kept for 10 % of train).

    python benchmarks/low_resource.py [--fraction 0.1] [--students static bilstm minilm-l3]

1. A stratified 10 % of BANKING77 train keeps its labels (``train.csv``); the other 90 % become
   unannotated messages (``pool.csv``).
2. An mpnet-base teacher is fine-tuned on the 10 % (its own validation split inside it).
3. The teacher labels the pool (the transfer set).
4. Each student kind is trained twice from the same initialisation: distilled (transfer set
   plus the 10 % labels) and on the 10 % labels alone (``distill`` without ``--transfer``).
Every model is evaluated on the full BANKING77 test set (quality only). Prints a Markdown
table with the gain of distillation per student.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from common import CLI, STUDENTS, finished, run

HERE = Path(__file__).resolve().parent


def split_labels(train: Path, out: Path, fraction: float, seed: int) -> tuple[Path, Path]:
    """A stratified ``fraction`` of train with labels, the rest as unannotated texts."""
    from sklearn.model_selection import train_test_split

    labelled, pool = out / "train.csv", out / "pool.csv"
    if labelled.exists() and pool.exists():
        return labelled, pool
    with train.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    keep, rest = train_test_split(rows, train_size=fraction, stratify=[r["label"] for r in rows], random_state=seed)
    out.mkdir(parents=True, exist_ok=True)
    with labelled.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in keep)
    with pool.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([r["text"]] for r in rest)
    return labelled, pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "banking77-10pct")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--teacher-epochs", type=int, default=5)
    parser.add_argument("--students", nargs="+", default=["static", "bilstm", "minilm-l3"], choices=list(STUDENTS))
    args = parser.parse_args()
    runs, test = args.runs, args.data / "test.csv"
    labelled, pool = split_labels(args.data / "train.csv", runs, args.fraction, seed=0)
    teacher, transfer = runs / "teacher", runs / "transfer"
    if not (teacher / "manifest.json").exists():
        run([*CLI, "teach", "--train", str(labelled), "--model", "mpnet-base", "--epochs", str(args.teacher_epochs), "--max-length", "64", "--out", str(teacher), "--quiet"])
    if not finished(transfer):
        run([*CLI, "label", "--teacher", str(teacher), "--texts", str(pool), "--out", str(transfer), "--quiet"])
    models = {"teacher": teacher}
    for name in args.students:
        for variant, extra in (("distilled", ["--transfer", str(transfer)]), ("labels-only", [])):
            out = runs / f"{name}-{variant}"
            if not (out / "manifest.json").exists():
                run([*CLI, "distill", "--teacher", str(teacher), "--train", str(labelled), *STUDENTS[name], *extra, "--out", str(out), "--quiet"])
            models[f"{name}-{variant}"] = out
    results = {}
    for name, path in models.items():
        evaluation = runs / "eval" / f"{name}.json"
        if not evaluation.exists():
            run([*CLI, "evaluate", str(path), "--data", str(test), "--json", str(evaluation), "--no-cost", "--quiet"])
        results[name] = json.loads(evaluation.read_text())
    print(f"Teacher (mpnet-base on {args.fraction:.0%} of the labels): accuracy {results['teacher']['accuracy']:.4f}\n")
    print("| student | labels only | distilled | gain (points) |")
    print("|---|---:|---:|---:|")
    for name in args.students:
        alone, distilled = results[f"{name}-labels-only"]["accuracy"], results[f"{name}-distilled"]["accuracy"]
        print(f"| {name} | {alone:.4f} | {distilled:.4f} | {100 * (distilled - alone):+.1f} |")


if __name__ == "__main__":
    main()
