"""Benchmark: model rating, coverage and balance on BANKING77 (issue 18 point 2).

    python benchmarks/rating.py [--data ../shared/data] [--models baseline teacher]

A seeded 10 % of train is held out for validation. Of the rest, two annotated sets of the same
size, the remaining messages being the unannotated pool of each:

- ``biased``: every message of 40 of the 77 intents (seeded choice) plus 5 % of the other 37's;
- ``stratified``: a stratified sample of the same size.

On each, the TF-IDF baseline and a teacher (``textdistill teach --method head --model minilm-l6
--max-length 64``: frozen MiniLM features and a logistic head) are trained, their automation
thresholds chosen on validation at 0.95 precision (``textdistill automate``) and the model rated
with ``textdistill rate MODEL --train ANNOTATED --pool POOL --validation VALIDATION``. Balance must
tell the two sets apart; the pool's hidden labels say whether the under-covered clusters are
the under-sampled intents. Texts are read from ../shared/data and written only under
benchmarks/runs/rating/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import CLI, read_rows, run, write_rows  # noqa: E402

N_KEPT_INTENTS = 40
REST_SHARE = 0.05


def splits(data: Path, runs: Path) -> tuple[Path, dict[str, tuple[Path, Path]], set[str], dict[str, str]]:
    """The validation file, per setting its (annotated, pool) files, the under-sampled intents,
    and each pool message's hidden label by id."""
    rows = read_rows(data / "banking77" / "train.csv")
    for i, row in enumerate(rows):
        row["id"] = f"b{i}"
    random.Random(0).shuffle(rows)
    cut = len(rows) // 10
    validation, rest = rows[:cut], rows[cut:]
    intents = sorted({r["label"] for r in rest})
    rng = random.Random(1)
    kept = set(rng.sample(intents, N_KEPT_INTENTS))
    biased = {r["id"] for r in rest if r["label"] in kept or rng.random() < REST_SHARE}
    by_label = defaultdict(list)
    for r in rest:
        by_label[r["label"]].append(r["id"])
    share = len(biased) / len(rest)
    stratified = set()
    for label, ids in sorted(by_label.items()):  # the same share of every intent, rounded so the sizes match
        stratified.update(random.Random(label).sample(ids, round(share * len(ids))))
    columns = ["id", "text", "label"]
    files = {}
    for name, annotated in (("biased", biased), ("stratified", stratified)):
        files[name] = (
            write_rows(runs / name / "annotated.csv", [r for r in rest if r["id"] in annotated], columns),
            write_rows(runs / name / "pool.csv", [r for r in rest if r["id"] not in annotated], ["id", "text"]),
        )
    hidden = {r["id"]: r["label"] for r in rest}
    return write_rows(runs / "validation.csv", validation, columns), files, set(intents) - kept, hidden


def train(kind: str, annotated: Path, validation: Path, out: Path) -> None:
    if (out / "manifest.json").exists():
        return
    if kind == "baseline":
        run([*CLI, "baseline", "--train", str(annotated), "--validation", str(validation), "--id-column", "id", "--out", str(out), "--quiet"])
    else:
        run([*CLI, "teach", "--train", str(annotated), "--validation", str(validation), "--id-column", "id", "--model", "minilm-l6",
             "--method", "head", "--max-length", "64", "--out", str(out), "--quiet"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "rating")
    parser.add_argument("--models", nargs="+", default=["baseline", "teacher"], choices=["baseline", "teacher"])
    args = parser.parse_args()
    if not (args.data / "banking77" / "train.csv").is_file():
        sys.exit(f"BANKING77 not found under {args.data}: pass --data DIR (the shared benchmark data)")
    validation, files, undersampled, hidden = splits(args.data, args.runs)
    lines = [
        "| annotated set | model | annotated / pool | balance AUROC | under-covered clusters | their examples from the under-sampled intents | "
        "coverage (automation, 0.95) | mean AP (validation) | rating | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for setting, (annotated, pool) in files.items():
        for kind in args.models:
            out = args.runs / setting / kind
            start = time.perf_counter()
            train(kind, annotated, validation, out)
            run([*CLI, "automate", str(out), "--validation", str(validation), "--quiet"])
            result = out / "rating.json"
            run([*CLI, "rate", str(out), "--train", str(annotated), "--pool", str(pool), "--validation", str(validation), "--json", str(result), "--quiet"])
            seconds = time.perf_counter() - start
            rating = json.loads(result.read_text())
            factors = {f["key"]: f for f in rating["factors"]}
            balance = rating["balance"]
            under = [c for c in balance["clusters"] if c["under_covered"]]
            texts = {r["text"]: r["id"] for r in read_rows(pool)}
            examples = [hidden[texts[e]] for c in under for e in c["examples"] if e in texts]  # shortened examples are not looked up
            from_undersampled = sum(label in undersampled for label in examples)
            n_annotated, n_pool = len(read_rows(annotated)), len(texts)
            lines.append(
                f"| {setting} | {kind} | {n_annotated:,} / {n_pool:,} | {balance['auroc']:.3f} ± {balance['auroc_std']:.3f} | "
                f"{len(under)} of {len(balance['clusters'])} | {from_undersampled} of {len(examples)} | {rating['coverage']['share']:.1%} | "
                f"{factors['mean_ap']['value']:.3f} | {rating['score']} ({rating['status']}) | {seconds:.0f} |"
            )
            print(lines[-1], flush=True)
    print("\n".join(lines))
    (args.runs / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
