"""Benchmark: teacher fine-tuning methods on BANKING77, through the real CLI.

    python benchmarks/teacher_methods.py [--model mpnet-base] [--epochs 3] [--methods full freeze:9 bitfit adapter lora]

Each method is trained on BANKING77 train minus a stratified 10 % validation split (seed 0),
then evaluated on the test set (quality only: the cost of the teacher is measured by the
evaluate benchmark). Parameter-efficient methods get the learning rates their papers use;
the head always has its own (2e-3) and starts from the linear probe. Prints a Markdown table
with accuracy, macro-F1, trainable parameters and seconds per epoch from the saved manifest.
A method whose model directory already holds a finished teacher is not trained again, nor
evaluated again when its evaluation JSON exists.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LEARNING_RATES = {"full": 5e-5, "freeze": 5e-5, "bitfit": 1e-3, "adapter": 5e-4, "lora": 5e-4, "head": 0.0}


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77")
    parser.add_argument("--model", default="mpnet-base")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--methods", nargs="+", default=["full", "freeze:9", "bitfit", "adapter", "lora"])
    parser.add_argument("--out", type=Path, default=HERE / "runs" / "banking77")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists():
        sys.exit(f"BANKING77 not found under {args.data}: point --data at it")
    cli = [sys.executable, "-m", "textdistill"]
    rows = []
    for method in args.methods:
        name = f"teacher-{method.replace(':', '')}"
        model_dir = args.out / name
        if not (model_dir / "manifest.json").exists():
            lr = LEARNING_RATES[method.split(":")[0]]
            run([*cli, "teach", "--train", str(args.data / "train.csv"), "--model", args.model, "--method", method,
                 "--epochs", str(args.epochs), "--lr", str(lr), "--max-length", str(args.max_length), "--out", str(model_dir)])
        evaluation = args.out / f"{name}.json"
        if not evaluation.exists():
            run([*cli, "evaluate", str(model_dir), "--data", str(args.data / "test.csv"), "--json", str(evaluation), "--no-cost", "--quiet"])
        manifest = json.loads((model_dir / "manifest.json").read_text())
        result = json.loads(evaluation.read_text())
        history = manifest["config"]["training"]["history"]
        epoch_seconds = [h["seconds"] for h in history if h.get("epoch", 0) > 0]
        rows.append((method, result, manifest, epoch_seconds, manifest["config"]["training"]["arguments"]["learning_rate"]))
    print("| method | lr | test accuracy | macro-F1 | trainable parameters | share | epochs run | min/epoch (median) | validation accuracy |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method, result, manifest, seconds, lr in rows:
        config = manifest["config"]
        per_epoch = f"{statistics.median(seconds) / 60:.1f}" if seconds else "—"
        print(
            f"| {method} | {lr:g} | {result['accuracy']:.4f} | {result['macro_f1']:.4f} | {config['trainable_params']:,} | "
            f"{config['trainable_params'] / config['total_params']:.2%} | {len(seconds)} | {per_epoch} | "
            f"{manifest['metrics']['validation']['teacher']:.4f} |"
        )


if __name__ == "__main__":
    main()
