"""Benchmark: students distilled from the mpnet-base teacher on BANKING77, through the real CLI.

    python benchmarks/students.py [--threads 2] [--students static bilstm minilm-l3 minilm-l6]

Steps (each skipped when its output exists, so an interrupted run resumes):
1. the teacher (``teacher-full``, see RESULTS.md) labels BANKING77 train minus the validation
   split, plus two augmented copies of each message (mask, POS, n-gram); with
   ``--more-copies N``, N more copies per message (``textdistill augment``, seed 1, none repeating
   an earlier text) are labelled into a further transfer set (``--more-sets K``: K such sets,
   seeds 1..K), and students, evaluations and report get the suffix ``-moreN`` (``-moreNxK``);
2. every student is distilled from those soft targets and the train labels;
3. early exit is added to the MiniLM-L6 student (branches self-distilled on the transfer texts);
4. baseline, teacher and students are evaluated on the test set in one run with the same
   thread count (cost: median of ``--repeats`` evaluations), and one report is built.
Prints a Markdown table: accuracy, share of the teacher's accuracy, batch-1 latency and its
ratio to the teacher's, messages/s at batch 256, peak memory, size and parameters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import CLI, STUDENTS, distill_students, evaluate, finished, run, transfer_texts

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "banking77")
    parser.add_argument("--teacher", default="teacher-full")
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument("--early-exit", nargs="*", default=["minilm-l6"], help="transformer students to add early exit to")
    parser.add_argument("--more-copies", type=int, default=0, help="augmented copies per message in each further transfer set")
    parser.add_argument("--more-sets", type=int, default=1, help="further transfer sets of --more-copies each (seeds 1, 2, ...)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    train, test, runs = args.data / "train.csv", args.data / "test.csv", args.runs
    teacher = runs / args.teacher
    if not (teacher / "manifest.json").exists():
        sys.exit(f"no teacher in {teacher}: train it first (RESULTS.md has the command)")
    transfer = runs / "transfer"
    if not finished(transfer):
        run([*CLI, "label", "--teacher", str(teacher), "--texts", str(transfer_texts(train, runs)), "--augment", "mask,pos,ngram",
             "--augment-factor", "2", "--out", str(transfer), "--quiet"])
    transfers, suffix = [transfer], ""
    if args.more_copies:
        suffix = f"-more{args.more_copies}" + (f"x{args.more_sets}" if args.more_sets > 1 else "")
        for seed in range(1, args.more_sets + 1):
            name = f"more{args.more_copies}" + (f"-seed{seed}" if seed > 1 else "")
            more = runs / f"transfer-{name}"
            if not finished(more):
                texts = runs / f"augmented-{name}.csv"
                excluded = [option for path in transfers for option in ("--exclude", str(path))]
                run([*CLI, "augment", "--texts", str(transfer_texts(train, runs)), "--factor", str(args.more_copies), "--seed", str(seed),
                     *excluded, "--out", str(texts)])
                run([*CLI, "label", "--teacher", str(teacher), "--texts", str(texts), "--id-column", "id", "--out", str(more), "--quiet"])
            transfers.append(more)
    models = {"baseline": runs / "baseline", "teacher": teacher, **distill_students(teacher, transfers, train, runs, args.students, suffix)}
    for name in args.early_exit:
        out = runs / f"student-{name}{suffix}-exit"
        if not (out / "manifest.json").exists():
            run([*CLI, "early-exit", str(runs / f"student-{name}{suffix}"), "--transfer", str(transfer), "--out", str(out), "--quiet"])
        models[f"{name}-exit"] = out
    evaluations = runs / f"students-eval{suffix}"
    evaluations.mkdir(exist_ok=True)
    results = {name: evaluate(path, test, evaluations, name, args.threads, args.repeats) for name, path in models.items()}
    run([*CLI, "report", *(str(evaluations / f"{name}.json") for name in models), "--out", str(runs / f"students-report{suffix}"), "--title", "BANKING77: teacher and students"])
    print_table(results)
    for name, result in results.items():
        if "early_exit" in result:
            print(f"\nEarly exit, {name} (threshold: accuracy, mean layers of {result['early_exit']['n_layers']}, ms/message at batch 256):")
            for row in result["early_exit"]["curve"]:
                print(f"| {row['threshold']} | {row['accuracy']:.4f} | {row['mean_layers']:.2f} | {row['ms_per_message']:.2f} |")


def print_table(results: dict[str, dict]) -> None:
    teacher = results["teacher"]
    print("| model | accuracy | of teacher | macro-F1 | ms/msg p50 | teacher / this | msgs/s (batch 256) | peak MB | size MB | parameters |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['accuracy']:.4f} | {r['accuracy'] / teacher['accuracy']:.1%} | {r['macro_f1']:.4f} | {r['latency_ms_p50']:.2f} | "
            f"{teacher['latency_ms_p50'] / r['latency_ms_p50']:.1f}x | {r['throughput_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | "
            f"{r['size_mb']:.1f} | {r['n_params']:,} |"
        )


if __name__ == "__main__":
    main()
