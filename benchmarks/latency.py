"""Batch-1 latency of several saved models, measured in turn in one process (rounds
interleaved, so that machine noise falls on all of them), with the median of the rounds' p50.

    python benchmarks/latency.py teacher=benchmarks/runs/banking77/teacher-full \
        bilstm=benchmarks/runs/banking77/student-bilstm-more4 --rounds 5 --samples 300

The first model is the reference: each other model's speed-up is reference / model.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="name=directory; the first is the reference")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77" / "test.csv")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from textdistill.data.messages import DataSpec, load_messages
    from textdistill.evaluate.cost import measure_latency
    from textdistill.models.base import load_model
    from textdistill.threads import limit_threads

    texts = load_messages(args.data, DataSpec()).texts
    models = {name: load_model(path) for name, path in (item.split("=", 1) for item in args.models)}
    rounds: dict[str, list[float]] = {name: [] for name in models}
    with limit_threads(args.threads):
        for _ in range(args.rounds):
            for name, model in models.items():
                rounds[name].append(measure_latency(model, texts, samples=args.samples, warmup=args.samples // 10)[0])
    reference = statistics.median(rounds[next(iter(models))])
    print("| model | ms/msg p50 per round | median | reference / this |")
    print("|---|---|---:|---:|")
    for name, values in rounds.items():
        median = statistics.median(values)
        print(f"| {name} | {' / '.join(f'{v:.2f}' for v in values)} | {median:.2f} | {reference / median:.1f}x |")


if __name__ == "__main__":
    main()
