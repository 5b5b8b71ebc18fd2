"""Benchmark: the TF-IDF baseline on the shared datasets, through the real CLI.

    python benchmarks/baseline.py [--data ../shared/data] [--repeats 3] [--threads 2]

For each dataset it runs ``textdistill baseline`` once and ``textdistill evaluate`` ``repeats``
times (the machine is shared and noisy), then prints a Markdown table with the median of
each cost number and the exact commands. Datasets that are absent are skipped with a message.
Derived files (NLU++ folds) are written under benchmarks/runs/, which git ignores.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
COST_KEYS = ("latency_ms_p50", "latency_ms_p95", "throughput_per_s", "peak_rss_mb")


def nlupp_folds(data: Path) -> tuple[Path, Path]:
    """NLU++ banking: folds 0-15 train, 16-19 test (the published 20-fold protocol, one split)."""
    out = RUNS / "nlupp_banking"
    out.mkdir(parents=True, exist_ok=True)
    with open(data / "nlupp" / "banking.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for name, keep in (("train", lambda f: f <= 15), ("test", lambda f: f >= 16)):
        with open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["text", "labels"])
            writer.writeheader()
            writer.writerows({"text": r["text"], "labels": r["labels"]} for r in rows if keep(int(r["fold"])))
    return out / "train.csv", out / "test.csv"


def datasets(data: Path) -> dict[str, tuple[Path, Path, list[str]]]:
    found = {}
    if (data / "banking77" / "train.csv").exists():
        found["BANKING77"] = (data / "banking77" / "train.csv", data / "banking77" / "test.csv", [])
    if (data / "nlupp" / "banking.csv").exists():
        found["NLU++ banking"] = (*nlupp_folds(data), [])
    if (data / "goemotions" / "train.csv").exists():
        found["GoEmotions"] = (data / "goemotions" / "train.csv", data / "goemotions" / "test.csv", [])
    return found


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "textdistill"]
    found = datasets(args.data)
    if not found:
        sys.exit(f"no datasets under {args.data}: point --data at the shared data folder")
    rows, commands = [], []
    for name, (train, test, options) in found.items():
        slug = name.lower().replace("+", "p").replace(" ", "_")
        model_dir = RUNS / slug / "baseline"
        train_cmd = [*cli, "baseline", "--train", str(train), "--out", str(model_dir), "--quiet", *options]
        run(train_cmd)
        results = []
        for repeat in range(args.repeats):
            json_path = RUNS / slug / f"baseline.{repeat}.json"
            eval_cmd = [*cli, "evaluate", str(model_dir), "--data", str(test), "--json", str(json_path), "--threads", str(args.threads), "--quiet"]
            run(eval_cmd)
            results.append(json.loads(json_path.read_text()))
        commands += [" ".join(train_cmd), " ".join(eval_cmd) + f"   # x{args.repeats}"]
        first = results[0]
        median = {key: statistics.median(r[key] for r in results) for key in COST_KEYS}
        rows.append((name, first, median))
    print("| dataset | accuracy | micro-F1 | macro-F1 | ms/message p50 | p95 | messages/s (batch 256) | peak MB | size MB | parameters |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, first, median in rows:
        accuracy = "—" if first["accuracy"] is None else f"{first['accuracy']:.4f}"
        print(
            f"| {name} | {accuracy} | {first['micro_f1']:.4f} | {first['macro_f1']:.4f} | {median['latency_ms_p50']:.2f} | "
            f"{median['latency_ms_p95']:.2f} | {median['throughput_per_s']:,.0f} | {median['peak_rss_mb']:.0f} | "
            f"{first['size_mb']:.1f} | {first['n_params']:,} |"
        )
    machine = rows[0][1]["machine"]
    print(f"\nMachine: {machine['cpu']}, {machine['cores']} cores, {args.threads} threads; instruction sets: {', '.join(machine['instruction_sets'])}")
    print("\nCommands:\n```\n" + "\n".join(commands) + "\n```")


if __name__ == "__main__":
    main()
