"""Benchmark: students on multi-label data (NLU++ banking, GoEmotions), through the real CLI.

    python benchmarks/multi_label.py [--datasets nlupp goemotions] [--students static bilstm minilm-l3]

Per dataset: a teacher is fine-tuned on train minus a 10 % validation split, labels those train
texts (NLU++ also with augmented copies: it has only 1,492 training messages), and each student
is distilled from its sigmoid soft targets (per-label BCE) and the labels. Thresholds are tuned on
the validation split (one global threshold). Prints micro-F1 against the teacher's and the TF-IDF
baseline's (benchmarks/baseline.py writes the baselines and NLU++'s fold files).

Teachers: mpnet-base on NLU++ banking (small); MiniLM-L6 on GoEmotions (43k messages: an mpnet
epoch takes about 45 min on 2 CPU cores), which the table says. ``--teacher-model mpnet-base``
trains another teacher instead (2 epochs); its teacher, transfer set, students and evaluations
go to a subfolder named after it (``runs/goemotions/mpnet-base/``), beside the default's.
Teacher training and labelling resume where they stopped when the same command is run again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import CLI, STUDENTS, distill_students, finished, run, transfer_texts

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
DATASETS = {
    # name: (runs dir, train, test, teacher model, teacher epochs, augment factor)
    "nlupp": ("nlupp_banking", "nlupp_banking/train.csv", "nlupp_banking/test.csv", "mpnet-base", 10, 4),
    "goemotions": ("goemotions", "goemotions/train.csv", "goemotions/test.csv", "minilm-l6", 2, 0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--students", nargs="+", default=["static", "bilstm", "minilm-l3"], choices=list(STUDENTS))
    parser.add_argument("--teacher-model", help="teacher encoder instead of the dataset's default (results in a subfolder named after it)")
    args = parser.parse_args()
    for dataset in args.datasets:
        folder, train, test, model, epochs, factor = DATASETS[dataset]
        runs = baseline_runs = RUNS / folder
        if args.teacher_model and args.teacher_model != model:
            model, runs = args.teacher_model, baseline_runs / args.teacher_model
        train = RUNS / train if train.startswith("nlupp") else args.data / train
        test = RUNS / test if test.startswith("nlupp") else args.data / test
        if not train.exists():
            raise SystemExit(f"{train} is missing: run benchmarks/baseline.py first (it writes NLU++'s fold files)")
        teacher, transfer = runs / f"teacher-{model}", runs / "transfer"
        if not (teacher / "manifest.json").exists():
            run([*CLI, "teach", "--train", str(train), "--model", model, "--epochs", str(epochs), "--max-length", "64", "--out", str(teacher), "--quiet"])
        if not finished(transfer):
            augment = ["--augment", "mask,pos,ngram", "--augment-factor", str(factor)] if factor else []
            run([*CLI, "label", "--teacher", str(teacher), "--texts", str(transfer_texts(train, runs)), *augment, "--out", str(transfer), "--quiet"])
        models = {"baseline": baseline_runs / "baseline", "teacher": teacher, **distill_students(teacher, [transfer], train, runs, args.students)}
        results = {}
        for name, path in models.items():
            evaluation = runs / "students-eval" / f"{name}.json"
            if not evaluation.exists():
                run([*CLI, "evaluate", str(path), "--data", str(test), "--json", str(evaluation), "--no-cost", "--quiet"])
            results[name] = json.loads(evaluation.read_text())
        teacher_f1, baseline_f1 = results["teacher"]["micro_f1"], results["baseline"]["micro_f1"]
        print(f"\n{dataset}: teacher {model} micro-F1 {teacher_f1:.4f}, TF-IDF baseline {baseline_f1:.4f}\n")
        print("| model | micro-F1 | of teacher | above baseline | macro-F1 |")
        print("|---|---:|---:|---:|---:|")
        for name, r in results.items():
            print(f"| {name} | {r['micro_f1']:.4f} | {r['micro_f1'] / teacher_f1:.1%} | {100 * (r['micro_f1'] - baseline_f1):+.1f} | {r['macro_f1']:.4f} |")


if __name__ == "__main__":
    main()
