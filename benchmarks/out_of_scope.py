"""Benchmark: "none of these labels" on BANKING77 with 10 intents held out as unknown (issue 18 point 3).

    python benchmarks/out_of_scope.py [--seeds 0 1 2] [--stage models|score|all]

For each seed, 10 of the 77 intents are chosen at random as unknown. Train and validation (a
seeded 10 % of train) hold the other 67; test holds the 67's test messages and the 10's test
messages. A MiniLM-L6 teacher (full fine-tuning, 2 epochs, 64 tokens) is trained on the 67,
labels its training texts, and static and BiLSTM (3 epochs) students are distilled from it. Then every
reject score is fitted on train and its threshold chosen on validation with
``textdistill reject`` (in-scope accuracy loss at most 1 point), and measured on test: AUROC
of telling unknown from known intents, the share of unknown-intent messages rejected, and the
in-scope accuracy lost. Texts are read from ../shared/data and written only under benchmarks/runs/.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import CLI, distill_students, finished, read_rows, run, write_rows  # noqa: E402

N_UNKNOWN = 10


def splits(data: Path, runs: Path, seed: int) -> dict:
    train = read_rows(data / "banking77" / "train.csv")
    test = read_rows(data / "banking77" / "test.csv")
    unknown = sorted(random.Random(seed).sample(sorted({r["label"] for r in train}), N_UNKNOWN))
    known = [r for r in train if r["label"] not in unknown]
    random.Random(seed).shuffle(known)
    cut = len(known) // 10
    return {
        "unknown": unknown,
        "train": write_rows(runs / "train.csv", known[cut:]),
        "validation": write_rows(runs / "validation.csv", known[:cut]),
        "test": write_rows(runs / "test_in_scope.csv", [r for r in test if r["label"] not in unknown]),
        "test_unknown": write_rows(runs / "test_unknown.csv", [r for r in test if r["label"] in unknown]),
    }


def models(split: dict, runs: Path, students: list[str]) -> dict[str, Path]:
    teacher = runs / "teacher"
    if not (teacher / "manifest.json").exists():
        run([*CLI, "teach", "--train", str(split["train"]), "--validation", str(split["validation"]), "--model", "minilm-l6",
             "--epochs", "2", "--max-length", "64", "--lr", "1e-4", "--out", str(teacher), "--quiet"])
    transfer = runs / "transfer"
    if not finished(transfer):
        texts = transfer_texts_of(split["train"], runs)
        run([*CLI, "label", "--teacher", str(teacher), "--texts", str(texts), "--out", str(transfer), "--quiet"])
    trained = {"teacher": teacher, **distill_students(teacher, [transfer], split["train"], runs, [s for s in students if s == "static"])}
    bilstm = runs / "student-bilstm"
    if "bilstm" in students and not (bilstm / "manifest.json").exists():  # 3 epochs, not its default 10: the machine's time budget
        run([*CLI, "distill", "--teacher", str(teacher), "--transfer", str(transfer), "--train", str(split["train"]), "--student", "bilstm",
             "--epochs", "3", "--min-steps", "0", "--out", str(bilstm), "--quiet"])
    if (bilstm / "manifest.json").exists():
        trained["bilstm"] = bilstm
    return trained


def transfer_texts_of(train: Path, runs: Path) -> Path:
    """Every training text (the validation file is separate here) as the transfer set's texts."""
    path = runs / "transfer_texts.csv"
    if not path.exists():
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text"])
            writer.writerows([r["text"]] for r in read_rows(train))
    return path


def logits_of(model, texts: list[str], cache: Path) -> np.ndarray:
    if cache.exists():
        return np.load(cache)
    from textdistill.evaluate.evaluation import decision_function_batched

    values = decision_function_batched(model, texts, cache.stem)
    np.save(cache, values)
    return values


def features_of(model, texts: list[str], cache: Path) -> np.ndarray:
    """A transformer's pooled encoder features (the feature-space variant of mahalanobis and knn)."""
    if cache.exists():
        return np.load(cache)
    from textdistill.training.probe import pooled_features

    values = pooled_features(model, texts, cache.stem)
    np.save(cache, values)
    return values


def score_model(name: str, model_dir: Path, split: dict, runs: Path, max_loss: float) -> list[dict]:
    """Every score of one model: fitted on train, threshold on validation, measured on test."""
    from textdistill.models.base import load_model
    from textdistill.models.out_of_scope import SCORES, choose_threshold, fit_stats, measure, out_of_scope_scores, separation

    model = load_model(model_dir)
    labels = list(model.label_space.labels)
    index = {label: i for i, label in enumerate(labels)}
    data = {part: read_rows(split[part]) for part in ("train", "validation", "test", "test_unknown")}
    texts = {part: [r["text"] for r in rows] for part, rows in data.items()}
    cache = runs / "scores" / name
    cache.mkdir(parents=True, exist_ok=True)
    spaces = {"logits": {part: logits_of(model, texts[part], cache / f"{part}.npy") for part in texts}}
    if hasattr(model, "network") and hasattr(model.network, "pool"):
        spaces["features"] = {part: features_of(model, texts[part], cache / f"{part}.features.npy") for part in texts}
    train_y = np.array([index[r["label"]] for r in data["train"]])
    correct = {part: spaces["logits"][part].argmax(axis=1) == np.array([index[r["label"]] for r in data[part]]) for part in ("validation", "test")}
    rows = []
    for space, values in spaces.items():
        for score in SCORES if space == "logits" else ("mahalanobis", "knn"):
            stats = fit_stats(score, values["train"], train_y)
            s = {part: out_of_scope_scores(score, values[part], stats) for part in values}
            threshold = choose_threshold(s["validation"], correct["validation"], max_loss)
            test = measure(s["test"], correct["test"], threshold)
            found = separation(s["test"], s["test_unknown"], threshold)
            # the threshold a test-set oracle would choose: the scores compared at exactly the same in-scope loss
            oracle = separation(s["test"], s["test_unknown"], choose_threshold(s["test"], correct["test"], max_loss))
            rows.append({"model": name, "space": space, "score": score, "auroc": found["auroc"], "unknown_rejected": found["rejected_share"], "unknown_rejected_oracle": oracle["rejected_share"],
                         "in_scope_loss_test": test["in_scope_loss"], "in_scope_loss_validation": measure(s["validation"], correct["validation"], threshold)["in_scope_loss"],
                         "accuracy_test": test["accuracy"], "accuracy_with_rejection": test["accuracy_with_rejection"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "out-of-scope")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--stage", choices=["models", "all", "summary"], default="all", help="summary: medians over the seeds' saved scores")
    parser.add_argument("--max-in-scope-loss", type=float, default=0.01)
    parser.add_argument("--students", nargs="*", default=["static", "bilstm"], choices=["static", "bilstm"])
    args = parser.parse_args()
    results = []
    if args.stage == "summary":
        for seed in args.seeds:
            results.extend({"seed": seed, **row} for row in json.loads((args.runs / f"seed{seed}" / "scores.json").read_text()))
        summarise(results, args.runs / "summary.json")
        return
    for seed in args.seeds:
        runs = args.runs / f"seed{seed}"
        split = splits(args.data, runs, seed)
        (runs / "unknown.json").write_text(json.dumps(split["unknown"]))
        trained = models(split, runs, args.students)
        print(json.dumps({"seed": seed, "unknown": split["unknown"], "models": {k: str(v) for k, v in trained.items()}}), flush=True)
        if args.stage == "models":
            continue
        rows = [row for name, path in trained.items() for row in score_model(name, path, split, runs, args.max_in_scope_loss)]
        (runs / "scores.json").write_text(json.dumps(rows, indent=2))
        results.extend({"seed": seed, **row} for row in rows)
    if results:
        summarise(results, args.runs / "summary.json")


def summarise(results: list[dict], path: Path) -> None:
    """Medians over seeds per model, space and score, and each model's gain over msp (the median of the per-seed gains)."""
    keys = sorted({(r["model"], r["space"], r["score"]) for r in results}, key=lambda k: (k[0], k[1] != "logits", k[2]))
    summary = []
    for model, space, score in keys:
        rows = [r for r in results if (r["model"], r["space"], r["score"]) == (model, space, score)]
        med = {m: statistics.median(r[m] for r in rows) for m in ("auroc", "unknown_rejected", "unknown_rejected_oracle", "in_scope_loss_test", "in_scope_loss_validation", "accuracy_test")}
        msp = {r["seed"]: r["auroc"] for r in results if (r["model"], r["space"], r["score"]) == (model, "logits", "msp")}
        gain = statistics.median(r["auroc"] - msp[r["seed"]] for r in rows)
        summary.append({"model": model, "space": space, "score": score, "seeds": len(rows), **med, "auroc_minus_msp": gain})
    path.write_text(json.dumps(summary, indent=2))
    print(f"{'model':8} {'space':8} {'score':12} {'seeds':>5} {'AUROC':>6} {'d-msp':>6} {'rejected':>8} {'oracle':>6} {'loss test':>9} {'loss val':>8} {'accuracy':>8}")
    for row in summary:
        print(f"{row['model']:8} {row['space']:8} {row['score']:12} {row['seeds']:5} {row['auroc']:6.3f} {row['auroc_minus_msp']:+6.3f} {row['unknown_rejected']:8.3f} {row['unknown_rejected_oracle']:6.3f} "
              f"{row['in_scope_loss_test']:9.4f} {row['in_scope_loss_validation']:8.4f} {row['accuracy_test']:8.3f}")


if __name__ == "__main__":
    main()
