"""Benchmark: the multi-label options for small, skewed label sets (issue 16, point 2).

    nice -n 19 python benchmarks/multi_label_options.py [--data ../shared/data] [--datasets ...] [--models tfidf static] [--threads 1]

Cheap models only: the TF-IDF baseline (losses ``bce`` and ``balanced``) and the static student
with hashed character n-grams trained on the labels alone (no teacher; ``bce``, ``focal`` and
``balanced``). Each is trained once per loss; its validation and test probabilities are kept in
benchmarks/runs/multi_label_options/ (numbers only) and every threshold rule is applied to them:
``global``, ``per_label``, ``auto`` (own threshold from 5 validation positives) and, for TF-IDF
with BCE, ``auto`` with other minimums. On hierarchical data the old parent rule (a parent
predicted when any descendant's probability reaches the parent's threshold, tuned on those
raised probabilities) is scored beside the new one.

Datasets, read from ../shared/data and never copied into the project:

- ``goemotions``: the 3-level hierarchy ``sentiment > ekman > emotion`` (``neutral`` flat), the
  official train / dev (validation) / test split;
- ``goemotions-10pct``: a seeded 10 % of train and of dev, the same test: tens of examples for
  the rare emotions, as in the long-email data the issue describes;
- ``nlupp``: NLU++ banking, folds 0-15 (less a seeded 10 % validation split) and 16-19 for test.

Scores are micro- and macro-F1 over every label column (parents included, as ``evaluate``
counts them) on test, with 95 % bootstrap intervals (1,000 resamples of the test messages), and
each row's paired-bootstrap difference from the same model trained with BCE under the global
threshold (the old parent rule's: from the new rule's ``auto`` row); "noise" marks a
difference whose interval includes 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from textdistill.models.thresholds import MIN_OWN_POSITIVES, tune_thresholds

HERE = Path(__file__).resolve().parent
OUT = HERE / "runs" / "multi_label_options"
SEP = " > "
RESAMPLES, LEVEL = 1000, 95
LOSSES = {"tfidf": ("bce", "balanced"), "static": ("bce", "focal", "balanced")}
AUTO_MINIMUMS = (2, 3, 10, 20)  # besides the default, for TF-IDF with BCE


def _read(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _sets(cell: str) -> tuple[str, ...]:
    return tuple(label for label in cell.split(";") if label)


def goemotions(data: Path, fraction: float | None) -> dict:
    folder = data / "goemotions"
    paths = {row["emotion"]: row["emotion"] if row["emotion"] == "neutral" else SEP.join((row["sentiment"], row["ekman"], row["emotion"]))
             for row in _read(folder / "taxonomy.csv")}
    splits = {}
    for split, name in (("train", "train"), ("validation", "dev"), ("test", "test")):
        rows = _read(folder / f"{name}.csv")
        if fraction and split != "test":
            rows = random.Random(f"0-{split}").sample(rows, round(len(rows) * fraction))
        splits[split] = ([row["text"] for row in rows], [tuple(paths[label] for label in _sets(row["labels"])) for row in rows])
    return splits


def nlupp(data: Path) -> dict:
    from textdistill.data.messages import MessageSet
    from textdistill.data.split import train_validation_split

    rows = _read(data / "nlupp" / "banking.csv")
    train = [r for r in rows if int(r["fold"]) <= 15]
    test = [r for r in rows if int(r["fold"]) >= 16]
    messages = MessageSet([r["text"] for r in train], [str(i) for i in range(len(train))], [_sets(r["labels"]) for r in train],
                          list(range(1, len(train) + 1)), "nlupp/banking.csv", True)
    kept, held_out = train_validation_split(messages, 0.1, 0)
    return {"train": (kept.texts, kept.label_sets), "validation": (held_out.texts, held_out.label_sets),
            "test": ([r["text"] for r in test], [_sets(r["labels"]) for r in test])}


DATASETS = {"goemotions": lambda data: goemotions(data, None), "goemotions-10pct": lambda data: goemotions(data, 0.1), "nlupp": nlupp}
FOLDERS = {"goemotions": "goemotions", "goemotions-10pct": "goemotions", "nlupp": "nlupp"}


def train(model_name: str, loss: str, splits: dict, cache: Path) -> dict:
    """Validation and test probabilities of one model, trained once and cached."""
    path = cache / f"{model_name}-{loss}.npz"
    if path.exists():
        saved = np.load(path, allow_pickle=False)
        return {key: saved[key] for key in saved.files} | json.loads(path.with_suffix(".json").read_text())
    from textdistill.models import TfidfBaseline
    from textdistill.models.baseline import BaselineConfig
    from textdistill.students.static import StaticConfig, StaticStudent

    if model_name == "tfidf":
        model = TfidfBaseline(BaselineConfig(multi_label_loss=loss))
    else:
        training = replace(StaticStudent.default_training("hash"), multi_label_loss=loss)
        model = StaticStudent(StaticConfig(embeddings="hash"), training=training)
    (texts, label_sets), validation = splits["train"], splits["validation"]
    started = time.perf_counter()
    model.fit(texts, label_sets, multi_label=True, hierarchy_sep=SEP, validation=validation, threshold_mode="global")
    seconds = time.perf_counter() - started
    result = {"validation": model.predict_proba(validation[0]), "test": model.predict_proba(splits["test"][0])}
    meta = {"labels": list(model.label_space.labels), "seconds": round(seconds, 1), "epochs": len(getattr(model, "history", []) or [])}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **result)
    path.with_suffix(".json").write_text(json.dumps(meta))
    print(f"{cache.name}: {model_name} {loss} trained in {seconds:.0f} s", file=sys.stderr, flush=True)
    return result | meta


AUTO = f"auto ({MIN_OWN_POSITIVES})"
OLD_RULE = f"{AUTO}, old parent rule"  # its Δ is against the new rule's AUTO row


def rules(space, y_val: np.ndarray, proba_val: np.ndarray, minimums: bool, old_rule: bool) -> dict:
    """Threshold rule name -> function from test probabilities to predicted indicators."""
    parents = space.parent_indices()

    def new(mode: str, minimum: int = MIN_OWN_POSITIVES):
        thresholds = tune_thresholds(y_val, proba_val, mode, parents, minimum)
        return lambda proba: space.encode(space.predict(proba, thresholds)).astype(bool)

    out = {"global": new("global"), "per_label": new("per_label"), AUTO: new("auto")}
    if minimums:
        out |= {f"auto ({n})": new("auto", n) for n in AUTO_MINIMUMS}
    if old_rule and space.hierarchical:
        # the rule before issue 16: thresholds tuned and applied on probabilities raised to the descendants'
        old = tune_thresholds(y_val, space.consistent(proba_val), "auto")
        out[OLD_RULE] = lambda proba: space.encode(space.decode(space.consistent(proba) >= old)).astype(bool)
    return out


def f1_samples(y: np.ndarray, pred: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Micro- and macro-F1 (labels in the truth or the predictions, as scikit-learn) for each row of
    ``weights`` (resample counts per message); row 0 of ``weights`` is the test set itself."""
    tp = weights @ (y & pred)
    fp = weights @ (~y & pred)
    fn = weights @ (y & ~pred)
    micro = 2 * tp.sum(1) / np.maximum(2 * tp.sum(1) + fp.sum(1) + fn.sum(1), 1)
    denom = 2 * tp + fp + fn
    per_label = np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)
    macro = (per_label * (denom > 0)).sum(1) / np.maximum((denom > 0).sum(1), 1)
    return micro, macro


def interval(samples: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(samples, [(100 - LEVEL) / 2, 100 - (100 - LEVEL) / 2])
    return float(low), float(high)


def run_dataset(name: str, data: Path, models: list[str]) -> list[dict]:
    from textdistill.data.labels import LabelSpace

    splits = DATASETS[name](data)
    cache = OUT / name
    rng = np.random.default_rng(0)
    n_test = len(splits["test"][0])
    weights = np.vstack([np.ones(n_test), rng.multinomial(n_test, np.full(n_test, 1 / n_test), size=RESAMPLES)]).astype(np.float64)
    rows = []
    for model_name in models:
        reference = None
        for loss in LOSSES[model_name]:
            trained = train(model_name, loss, splits, cache)
            space = LabelSpace(tuple(trained["labels"]), True, SEP if any(SEP in label for label in trained["labels"]) else None)
            y_val = space.encode(splits["validation"][1])
            y_test = space.encode(splits["test"][1]).astype(bool)
            scored = {}
            for rule, predict in rules(space, y_val, trained["validation"], model_name == "tfidf" and loss == "bce", model_name == "tfidf").items():
                scored[rule] = f1_samples(y_test, predict(trained["test"]), weights)
                is_reference = reference is None
                if is_reference:
                    reference = scored[rule]
                against = scored[AUTO] if rule == OLD_RULE else reference
                micro, macro = scored[rule]
                rows.append({"dataset": name, "model": model_name, "loss": loss, "thresholds": rule, "micro": micro, "macro": macro,
                             "d_micro": None if is_reference else micro - against[0], "d_macro": None if is_reference else macro - against[1],
                             "seconds": trained["seconds"]})
    return rows


def _cell(samples: np.ndarray) -> str:
    low, high = interval(samples[1:])
    return f"{samples[0]:.4f} [{low:.3f}, {high:.3f}]"


def _delta(samples: np.ndarray | None) -> str:
    if samples is None:
        return "reference"
    low, high = interval(samples[1:])
    noise = " (noise)" if low <= 0 <= high else ""
    return f"{100 * samples[0]:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]{noise}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from textdistill.progress import set_quiet

    torch.set_num_threads(args.threads)
    set_quiet(True)
    for name in args.datasets:
        if not (args.data / FOLDERS[name]).exists():
            print(f"{name}: no data under {args.data}: skipped", file=sys.stderr)
            continue
        rows = run_dataset(name, args.data, args.models)
        print(f"\n{name}\n")
        print("| model | loss | thresholds | micro-F1 [95 % CI] | Δ micro (points) | macro-F1 [95 % CI] | Δ macro (points) | train s |")
        print("|---|---|---|---:|---:|---:|---:|---:|")
        for row in rows:
            print(f"| {row['model']} | {row['loss']} | {row['thresholds']} | {_cell(row['micro'])} | {_delta(row['d_micro'])} | "
                  f"{_cell(row['macro'])} | {_delta(row['d_macro'])} | {row['seconds']:.0f} |")


if __name__ == "__main__":
    main()
