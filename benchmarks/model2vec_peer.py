"""Benchmark peer: Model2Vec's own ``StaticModelForClassification`` on BANKING77, trained on the
same labels (train minus the seeded 10 % validation split) from the same starting embeddings
as textdistill's static student (the teacher's token vectors, PCA to 256, SIF-weighted on the
same texts), so the comparison isolates what distillation and our training add.

    pip install "model2vec[train]==0.10.0"   # benchmark-only; not a textdistill dependency
    python benchmarks/model2vec_peer.py [--threads 2] [--seed 42]

Prints test accuracy and messages/s at batch 256 (median of 3 timed passes over the test set).
``--seed`` is Model2Vec's own training seed (head initialisation and batch order; 42 is its
default). ``--transfer`` names the transfer sets (under ``--runs``) whose texts the student's
SIF weights were counted on, so both start from the same vectors.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from common import seeded_split

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "banking77")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "banking77")
    parser.add_argument("--teacher", default="teacher-full")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--transfer", nargs="+", default=["transfer"])
    parser.add_argument("--out", type=Path, help="result JSON (default: RUNS/model2vec-peer.json)")
    args = parser.parse_args()

    import torch
    from model2vec import StaticModel
    from model2vec.train import StaticModelForClassification
    from tokenizers import Tokenizer

    from textdistill.data.messages import DataSpec, load_messages
    from textdistill.distill.recipe import distillation_data
    from textdistill.students.embeddings import distill_teacher_vectors
    from textdistill.students.tokens import SubwordVocabulary

    torch.set_num_threads(args.threads)
    teacher = args.runs / args.teacher
    train, validation = seeded_split(args.data / "train.csv")
    test = load_messages(args.data / "test.csv", DataSpec()).annotated()
    # The static student's SIF weights count tokens in its training texts: the same here.
    texts = distillation_data([teacher], [args.runs / name for name in args.transfer], train, validation).texts
    vocabulary = SubwordVocabulary.from_pretrained(teacher / "encoder")
    vectors = distill_teacher_vectors(teacher, vocabulary, dim=256, texts=texts)
    tokenizer = Tokenizer.from_file(str(teacher / "encoder" / "tokenizer.json"))
    classifier = StaticModelForClassification.from_static_model(model=StaticModel(vectors, tokenizer, normalize=False))
    started = time.perf_counter()
    classifier.fit(
        train.texts, [labels[0] for labels in train.labels],
        X_val=validation.texts, y_val=[labels[0] for labels in validation.labels], device="cpu",
        random_seed=args.seed,
    )
    train_seconds = time.perf_counter() - started
    truth = [labels[0] for labels in test.labels]
    accuracy = float(np.mean([p == t for p, t in zip(classifier.predict(test.texts), truth)]))
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        classifier.predict(test.texts, batch_size=256)
        timings.append(len(test.texts) / (time.perf_counter() - started))
    result = {"accuracy": accuracy, "throughput_per_s": statistics.median(timings), "train_seconds": train_seconds, "threads": args.threads, "seed": args.seed}
    (args.out or args.runs / "model2vec-peer.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
