"""Benchmark: does `textdistill check` find planted annotation errors? (issue 17 point 4)

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 19 python benchmarks/label_check.py [--data ../shared/data] [--seed 0]

BANKING77 train with 5 % of the labels flipped to a random other intent (seeded): precision and
recall of check's top k (k = the number of flips; at k they are the same number) and of the
messages cleanlab flags, with TF-IDF features (the baseline refit per fold, 5 folds). Then the
test accuracy of the TF-IDF baseline trained on all the flipped data, on it without check's top
k, and on the clean data: the share of the accuracy the flips cost that removing the top k wins
back. NLU++ banking (multi-label): 5 % of the (message, label) positives dropped; precision and
recall of finding the messages with a missing label. Prints a Markdown table; texts are read
from the shared data folder, never copied.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from textdistill.data.messages import DataSpec, MessageSet, load_messages
from textdistill.models.baseline import TfidfBaseline
from textdistill.progress import set_quiet
from textdistill.refine.check import check_labels

HERE = Path(__file__).resolve().parent
SHARE = 0.05


def with_labels(messages: MessageSet, label_sets: list[tuple[str, ...]]) -> MessageSet:
    copy = messages.subset(range(len(messages)))
    copy.label_sets = list(label_sets)
    return copy


def scores(check, planted: set[int]) -> dict[str, float]:
    top = set(check.ranked(len(planted)).tolist())
    flagged = set(np.flatnonzero(check.flagged).tolist())
    return {
        "k": len(planted),
        "precision_at_k": len(top & planted) / len(top),
        "recall_at_k": len(top & planted) / len(planted),
        "flagged": len(flagged),
        "flagged_precision": len(flagged & planted) / max(len(flagged), 1),
        "flagged_recall": len(flagged & planted) / len(planted),
    }


def accuracy(train: MessageSet, test: MessageSet) -> float:
    model = TfidfBaseline().fit(train.texts, train.labels, multi_label=False)
    predicted = model.predict(test.texts)
    return float(np.mean([p == labels[0] for p, labels in zip(predicted, test.labels)]))


def banking77(data: Path, seed: int) -> dict:
    train = load_messages(data / "banking77" / "train.csv", DataSpec())
    test = load_messages(data / "banking77" / "test.csv", DataSpec())
    rng = random.Random(seed)
    intents = sorted({labels[0] for labels in train.labels})
    flipped = set(rng.sample(range(len(train)), round(SHARE * len(train))))
    noisy = with_labels(
        train, [(rng.choice([x for x in intents if x != labels[0]]),) if i in flipped else labels for i, labels in enumerate(train.labels)]
    )
    start = time.perf_counter()
    check = check_labels(noisy, features="tfidf", folds=5, seed=seed)
    result = {"check_s": time.perf_counter() - start, **scores(check, flipped)}
    removed = set(check.ranked(len(flipped)).tolist())
    result["acc_flipped"] = accuracy(noisy, test)
    result["acc_removed"] = accuracy(noisy.subset([i for i in range(len(noisy)) if i not in removed]), test)
    result["acc_clean"] = accuracy(train, test)
    result["recovered"] = (result["acc_removed"] - result["acc_flipped"]) / (result["acc_clean"] - result["acc_flipped"])
    return result


def nlupp(data: Path, seed: int) -> dict:
    messages = load_messages(data / "nlupp" / "banking.csv", DataSpec())
    rng = random.Random(seed)
    positives = [(i, label) for i, labels in enumerate(messages.labels) for label in labels]
    dropped = set(rng.sample(positives, round(SHARE * len(positives))))
    noisy = with_labels(messages, [tuple(x for x in labels if (i, x) not in dropped) for i, labels in enumerate(messages.labels)])
    planted = {i for i, _ in dropped}
    start = time.perf_counter()
    check = check_labels(noisy, features="tfidf", folds=5, seed=seed)
    result = {"check_s": time.perf_counter() - start, "dropped_labels": len(dropped), **scores(check, planted)}
    top = check.ranked(len(planted))
    named = [i for i in top if i in planted]
    result["missing_named"] = float(np.mean([any((i, x) in dropped for x in check.missing[i]) for i in named])) if named else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "banking77" / "train.csv").exists() or not (args.data / "nlupp" / "banking.csv").exists():
        raise SystemExit(f"BANKING77 or NLU++ is missing under {args.data}: point --data at the shared data folder")
    set_quiet(True)
    b = banking77(args.data, args.seed)
    print(f"\nBANKING77 train, {b['k']} of 10,003 labels flipped (seed {args.seed}), TF-IDF features, 5 folds, check {b['check_s']:.0f} s")
    print("| | precision | recall | messages |\n|---|---:|---:|---:|")
    print(f"| top k (k = flips) | {b['precision_at_k']:.3f} | {b['recall_at_k']:.3f} | {b['k']} |")
    print(f"| cleanlab's flags | {b['flagged_precision']:.3f} | {b['flagged_recall']:.3f} | {b['flagged']} |")
    print("\n| TF-IDF baseline trained on | test accuracy |\n|---|---:|")
    print(f"| flipped labels | {b['acc_flipped']:.4f} |\n| flipped, top k removed | {b['acc_removed']:.4f} |\n| clean labels | {b['acc_clean']:.4f} |")
    print(f"\nRemoving the top k recovers {b['recovered']:.0%} of the accuracy the flips cost.")
    n = nlupp(args.data, args.seed)
    print(
        f"\nNLU++ banking, {n['dropped_labels']} of the positives dropped (5 %, seed {args.seed}) in {n['k']} messages, "
        f"TF-IDF features, 5 folds, check {n['check_s']:.0f} s"
    )
    print("| | precision | recall | messages |\n|---|---:|---:|---:|")
    print(f"| top k (k = messages with a dropped label) | {n['precision_at_k']:.3f} | {n['recall_at_k']:.3f} | {n['k']} |")
    print(f"| cleanlab's flags | {n['flagged_precision']:.3f} | {n['flagged_recall']:.3f} | {n['flagged']} |")
    print(f"\nOf the top k's messages with a dropped label, missing_labels names a dropped one in {n['missing_named']:.0%}.")


if __name__ == "__main__":
    main()
