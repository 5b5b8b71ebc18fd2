"""Benchmark: "none of these labels" on BANKING77 with 10 intents held out as unknown (issue 18 point 3).

    python benchmarks/out_of_scope.py [--seeds 0 1 2] [--stage models|score|all]

For each seed, 10 of the 77 intents are chosen at random as unknown. Train and validation (a
seeded 10 % of train) hold the other 67; test holds the 67's test messages and the 10's test
messages. A MiniLM-L6 teacher (full fine-tuning, 2 epochs, 64 tokens) is trained on the 67,
labels its training texts, and static and BiLSTM students are distilled from it. Then every
reject score is fitted on train and its threshold chosen on validation with
``textdistill reject`` (in-scope accuracy loss at most 1 point), and measured on test: AUROC
of telling unknown from known intents, the share of unknown-intent messages rejected, and the
in-scope accuracy lost. Texts are read from ../shared/data and written only under benchmarks/runs/.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import CLI, distill_students, finished, run  # noqa: E402

N_UNKNOWN = 10


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def splits(data: Path, runs: Path, seed: int) -> dict:
    train = read(data / "banking77" / "train.csv")
    test = read(data / "banking77" / "test.csv")
    unknown = sorted(random.Random(seed).sample(sorted({r["label"] for r in train}), N_UNKNOWN))
    known = [r for r in train if r["label"] not in unknown]
    random.Random(seed).shuffle(known)
    cut = len(known) // 10
    return {
        "unknown": unknown,
        "train": write(runs / "train.csv", known[cut:]),
        "validation": write(runs / "validation.csv", known[:cut]),
        "test": write(runs / "test_in_scope.csv", [r for r in test if r["label"] not in unknown]),
        "test_unknown": write(runs / "test_unknown.csv", [r for r in test if r["label"] in unknown]),
    }


def models(split: dict, runs: Path) -> dict[str, Path]:
    teacher = runs / "teacher"
    if not (teacher / "manifest.json").exists():
        run([*CLI, "teach", "--train", str(split["train"]), "--validation", str(split["validation"]), "--model", "minilm-l6",
             "--epochs", "2", "--max-length", "64", "--lr", "1e-4", "--out", str(teacher), "--quiet"])
    transfer = runs / "transfer"
    if not finished(transfer):
        texts = transfer_texts_of(split["train"], runs)
        run([*CLI, "label", "--teacher", str(teacher), "--texts", str(texts), "--out", str(transfer), "--quiet"])
    students = distill_students(teacher, [transfer], split["train"], runs, ["static", "bilstm"])
    return {"teacher": teacher, **students}


def transfer_texts_of(train: Path, runs: Path) -> Path:
    """Every training text (the validation file is separate here) as the transfer set's texts."""
    path = runs / "transfer_texts.csv"
    if not path.exists():
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text"])
            writer.writerows([r["text"]] for r in read(train))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "out-of-scope")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stage", choices=["models", "score", "all"], default="all")
    args = parser.parse_args()
    for seed in args.seeds:
        runs = args.runs / f"seed{seed}"
        split = splits(args.data, runs, seed)
        (runs / "unknown.json").write_text(json.dumps(split["unknown"]))
        trained = models(split, runs)
        print(json.dumps({"seed": seed, "unknown": split["unknown"], "models": {k: str(v) for k, v in trained.items()}}), flush=True)


if __name__ == "__main__":
    main()
