"""Benchmark: textdistill drift on BANKING77 (issue 18 point 4), TF-IDF baseline.

    python benchmarks/drift.py [--data ../shared/data] [--seeds 0 1 2] [--null-splits 10]

The TF-IDF baseline trained on BANKING77 train (textdistill baseline, its seeded 10 %
validation split), then ``textdistill drift`` with BANKING77 test as the reference against:

- (a) test itself, shuffled: no drift expected;
- (a') per seed, one random half of test against the other: no drift expected (like traffic
  that is not the same messages);
- (b) per seed, test with 10 intents removed and 5 others over-represented (each of their
  messages three times), the 15 drawn at random: drift expected, the 5 named as rising and the
  10 as falling, no other label named;
- (c) per seed, test with a tenth of its messages replaced by GoEmotions test comments (Reddit,
  out of the banking domain): drift expected, from the embeddings or the coverage;
- and, for a false-alarm rate, ``--null-splits`` random halves of test against the other half
  (seeds 100, 101, ...; in this process, not the command): how often each measure fires.

Texts are read from ../shared/data and written only under benchmarks/runs/drift/.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import CLI, read_rows, write_rows  # noqa: E402
REMOVED, OVER_REPRESENTED, REPEATS = 10, 5, 3


def cases(test: list[dict], reddit: list[dict], runs: Path, seeds: list[int]):
    """(name, reference file, current file, labels expected to rise, to fall) per case."""
    shuffled = test[:]
    random.Random(0).shuffle(shuffled)
    yield "(a) test, shuffled", runs / "test.csv", write_rows(runs / "shuffled.csv", shuffled), set(), set()
    for seed in seeds:
        rows = test[:]
        random.Random(seed).shuffle(rows)
        half = len(rows) // 2
        yield f"(a') half against half, seed {seed}", write_rows(runs / f"half-a-{seed}.csv", rows[:half]), write_rows(runs / f"half-b-{seed}.csv", rows[half:]), set(), set()
    intents = sorted({row["label"] for row in test})
    for seed in seeds:
        chosen = random.Random(seed).sample(intents, REMOVED + OVER_REPRESENTED)
        removed, over = set(chosen[:REMOVED]), set(chosen[REMOVED:])
        rows = [row for row in test if row["label"] not in removed for _ in range(REPEATS if row["label"] in over else 1)]
        random.Random(seed).shuffle(rows)
        yield f"(b) 10 removed, 5 x{REPEATS}, seed {seed}", runs / "test.csv", write_rows(runs / f"shifted-{seed}.csv", rows), over, removed
    for seed in seeds:
        rows = test[:]
        random.Random(seed).shuffle(rows)
        cut = len(rows) // 10
        rows = [{"text": row["text"], "label": ""} for row in random.Random(seed).sample(reddit, cut)] + rows[cut:]
        random.Random(seed).shuffle(rows)
        yield f"(c) a tenth Reddit comments, seed {seed}", runs / "test.csv", write_rows(runs / f"reddit-{seed}.csv", rows), None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "drift")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--null-splits", type=int, default=10)
    args = parser.parse_args()
    model = args.runs / "baseline"
    started = time.perf_counter()
    subprocess.run([*CLI, "baseline", "--train", args.data / "banking77" / "train.csv", "--out", model, "--quiet"], check=True)
    print(f"baseline trained in {time.perf_counter() - started:.0f} s\n")
    test = read_rows(args.data / "banking77" / "test.csv")
    write_rows(args.runs / "test.csv", test)
    print("| case | messages (ref / current) | verdict (what fired) | rose: right / named | fell: right / named | chi-square p | coverage | AUROC (p) | MMD² (p) | seconds |")
    print("|---|---|---|---|---|---:|---|---|---|---:|")
    reddit = read_rows(args.data / "goemotions" / "test.csv")
    for name, reference, current, rise, fall in cases(test, reddit, args.runs, args.seeds):
        out = args.runs / f"{current.stem}.json"
        started = time.perf_counter()
        subprocess.run([*CLI, "drift", model, "--reference", reference, "--current", current, "--out", out, "--quiet"], check=True, capture_output=True)
        seconds = time.perf_counter() - started
        result = json.loads(out.read_text())
        rose = {c["label"] for c in result["label_shift"]["labels"] if c["direction"] == "rose"}
        fell = {c["label"] for c in result["label_shift"]["labels"] if c["direction"] == "fell"}
        coverage, embeddings = result["coverage"], result["embeddings"]
        what = [name for name, on in (("labels", result["label_shift"]["fired"]), ("coverage", coverage["fired"]), ("classifier", embeddings["classifier_fired"]), ("MMD", embeddings["mmd_fired"])) if on]
        fired = f" ({', '.join(what)})" if what else ""
        if rise is None:  # (c): no labels expected either way
            named = f"- / {len(rose)} | - / {len(fell)}"
        else:
            named = f"{len(rose & rise)} of {len(rise)} / {len(rose)} | {len(fell & fall)} of {len(fall)} / {len(fell)}"
        print(
            f"| {name} | {result['n_reference']:,} / {result['n_current']:,} | {result['verdict']}{fired} | {named} | "
            f"{result['label_shift']['overall']['p_value']:.2g} | {coverage['reference']:.1%} -> {coverage['current']:.1%} | "
            f"{embeddings['auroc']:.3f} ({embeddings['auroc_p_value']:.2g}) | {embeddings['mmd']:.2g} ({embeddings['mmd_p_value']:.2g}) | {seconds:.0f} |"
        )
    false_alarms(model, test, args.null_splits)


def false_alarms(model: Path, test: list[dict], splits: int) -> None:
    """How often each measure fires on one random half of test against the other."""
    from textdistill.data.messages import MessageSet
    from textdistill.progress import set_quiet
    from textdistill.refine.drift import measure_drift

    set_quiet(True)
    fired = {"labels": 0, "coverage": 0, "classifier": 0, "mmd": 0, "verdict": 0}
    for seed in range(100, 100 + splits):
        rows = [row["text"] for row in test]
        random.Random(seed).shuffle(rows)
        half = len(rows) // 2
        sides = [MessageSet(texts, [str(i) for i in range(len(texts))], [None] * len(texts), list(range(1, len(texts) + 1)), name, None)
                 for texts, name in ((rows[:half], "a"), (rows[half:], "b"))]  # fmt: skip
        result = measure_drift(model, sides[1], reference=sides[0], seed=seed)
        for name, value in (("labels", result.label_shift.fired), ("coverage", result.coverage.fired), ("classifier", result.embeddings.classifier_fired),
                            ("mmd", result.embeddings.mmd_fired), ("verdict", result.verdict == "drift")):  # fmt: skip
            fired[name] += value
    print(f"\nFalse alarms in {splits} random half/half splits of test (seeds 100-{99 + splits}): " + ", ".join(f"{name} {n}" for name, n in fired.items()))


if __name__ == "__main__":
    main()
