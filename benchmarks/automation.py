"""Benchmark: automation thresholds at a target precision (issue 18 point 1), TF-IDF baseline.

    python benchmarks/automation.py [--target 0.95]

For BANKING77 (a seeded 10 % of train held out for validation) and NLU++ banking (folds 0-13
train, 14-15 validation, 16-19 test): train the TF-IDF baseline, choose the thresholds on
validation with ``textdistill automate``, and measure them on test with ``textdistill evaluate``:
how many labels reach the target precision on validation and how many still reach it on test.
Texts are read from ../shared/data and written only under benchmarks/runs/.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import CLI, read_rows, write_rows  # noqa: E402


def splits(data: Path, runs: Path) -> dict[str, tuple[Path, Path, Path]]:
    rows = read_rows(data / "banking77" / "train.csv")
    random.Random(0).shuffle(rows)
    cut = len(rows) // 10
    banking77 = (
        write_rows(runs / "banking77" / "train.csv", rows[cut:], ["text", "label"]),
        write_rows(runs / "banking77" / "validation.csv", rows[:cut], ["text", "label"]),
        data / "banking77" / "test.csv",
    )
    rows = read_rows(data / "nlupp" / "banking.csv")
    part = {name: [r for r in rows if int(r["fold"]) in folds] for name, folds in (("train", range(14)), ("validation", (14, 15)), ("test", range(16, 20)))}
    nlupp = tuple(write_rows(runs / "nlupp" / f"{name}.csv", part[name], ["text", "labels"]) for name in ("train", "validation", "test"))
    return {"banking77": banking77, "nlupp": nlupp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "automation")
    parser.add_argument("--target", type=float, default=0.95)
    args = parser.parse_args()
    print("| data | labels | reach the target on validation | still reach it on test | test messages automated |")
    print("|---|---:|---:|---:|---:|")
    for name, (train, validation, test) in splits(args.data, args.runs).items():
        model, result = args.runs / name / "baseline", args.runs / name / "evaluation.json"
        subprocess.run([*CLI, "baseline", "--train", train, "--validation", validation, "--out", model, "--quiet"], check=True)
        subprocess.run([*CLI, "automate", model, "--validation", validation, "--target-precision", str(args.target), "--quiet"], check=True)
        subprocess.run([*CLI, "evaluate", model, "--data", test, "--json", result, "--no-cost", "--quiet"], check=True)
        automation = json.loads(result.read_text())["automation"]
        labels = automation["labels"]
        share = automation.get("automated_share")
        print(
            f"| {name} | {len(labels)} | {automation['n_reached_on_validation']} | {automation['n_reached']} | "
            f"{'-' if share is None else f'{share:.1%}'} |"
        )
        (args.runs / name / "automation_summary.json").write_text(json.dumps(automation, indent=1))


if __name__ == "__main__":
    main()
