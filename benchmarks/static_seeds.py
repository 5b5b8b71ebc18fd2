"""Benchmark: the static student against Model2Vec's classifier over several training seeds.

    python benchmarks/static_seeds.py [--seeds 0 1 2] [--epochs 3] [--more-copies 4]

One training run of either model moves test accuracy by a few tenths of a point (3,080 BANKING77
test messages: 0.1 point is 3 messages), the size of the margin the static target asks for.
So both are trained once per seed, on the same split (train minus the seeded 10 % validation
split that the transfer sets leave out, written to ``split/``; the seed then changes only the
initialisation and batch order), and the medians are compared:
1. the static student, distilled from ``teacher-full`` with the transfer sets of
   ``benchmarks/students.py --more-copies N`` (``transfer`` and ``transfer-moreN``, which must
   exist), ``--epochs`` epochs, into ``student-static-moreN-eE-seedS``;
2. Model2Vec's ``StaticModelForClassification`` from the same starting vectors
   (``model2vec_peer.py --seed S``, SIF weights counted on the same transfer texts; needs ``pip install "model2vec[train]==0.10.0"``).
Quality only, one thread each. Prints a Markdown table, one row a seed, and the medians.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

from common import CLI, run, seeded_split

HERE = Path(__file__).resolve().parent


def split_files(train: Path, out: Path) -> tuple[Path, Path]:
    """Train minus the seeded validation split (10 %, seed 0) and that split, as text,label CSVs."""
    paths = out / "train.csv", out / "validation.csv"
    if not all(path.exists() for path in paths):
        parts = seeded_split(train)
        out.mkdir(parents=True, exist_ok=True)
        for path, part in zip(paths, parts):
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["text", "label"])
                writer.writerows((text, labels[0]) for text, labels in zip(part.texts, part.labels))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "banking77")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--more-copies", type=int, default=4)
    args = parser.parse_args()
    runs, test = args.runs, args.data / "test.csv"
    transfers = [runs / "transfer", runs / f"transfer-more{args.more_copies}"]
    missing = [str(path) for path in transfers if not (path / "manifest.json").exists()]
    if missing:
        sys.exit(f"missing transfer set(s) {', '.join(missing)}: run benchmarks/students.py --more-copies {args.more_copies} first")
    train, validation = split_files(args.data / "train.csv", runs / "split")
    sources = [option for path in transfers for option in ("--transfer", str(path))]
    rows = []
    for seed in args.seeds:
        student = runs / f"student-static-more{args.more_copies}-e{args.epochs}-seed{seed}"
        if not (student / "manifest.json").exists():
            run([*CLI, "distill", "--teacher", str(runs / "teacher-full"), *sources, "--train", str(train), "--validation", str(validation),
                 "--student", "static", "--epochs", str(args.epochs), "--seed", str(seed), "--out", str(student), "--quiet"])
        evaluation = runs / "static-seeds" / f"{student.name}.json"
        if not evaluation.exists():
            evaluation.parent.mkdir(parents=True, exist_ok=True)
            run([*CLI, "evaluate", str(student), "--data", str(test), "--json", str(evaluation), "--no-cost", "--threads", "1", "--quiet"])
        peer = runs / "static-seeds" / f"model2vec-more{args.more_copies}-seed{seed}.json"
        if not peer.exists():
            run([sys.executable, str(HERE / "model2vec_peer.py"), "--runs", str(runs), "--transfer", *(path.name for path in transfers),
                 "--seed", str(seed), "--threads", "1", "--out", str(peer)])
        rows.append((seed, json.loads(evaluation.read_text())["accuracy"], json.loads(peer.read_text())["accuracy"]))
    print("| seed | static student | Model2Vec classifier | difference (points) |")
    print("|---:|---:|---:|---:|")
    for seed, ours, theirs in rows:
        print(f"| {seed} | {ours:.4f} | {theirs:.4f} | {100 * (ours - theirs):+.2f} |")
    ours, theirs = statistics.median(r[1] for r in rows), statistics.median(r[2] for r in rows)
    print(f"| median | {ours:.4f} | {theirs:.4f} | {100 * (ours - theirs):+.2f} |")


if __name__ == "__main__":
    main()
