"""``textdistill demo``: the pipeline on a built-in sample of customer-service emails."""

from __future__ import annotations

import csv
import json
import math
import tomllib
from pathlib import Path

from textdistill.data.sample import write_sample_dataset
from textdistill.errors import TextdistillError
from textdistill.pipeline import Pipeline, RunConfig, RunState

DEMO_CONFIG = """\
# The demo's pipeline: edit and rerun with `textdistill run {path}`
[run]
stages = ["load", "split", "baseline", "teach", "label", "distill", "compress", "evaluate", "report", "suggest"]
seed = 0

[data]
train = "data/train.csv"
test = "data/test.csv"
unannotated = "data/unannotated.csv"
# a small annotated sample of recent messages: early stopping and the weak-teacher check judge
# the words and phrasings that the older annotated file misses
validation = "data/validation.csv"
text_columns = ["subject", "body"]
id_column = "id"
labels_column = "labels"
clean_email = true

[teacher]
# the small packaged MiniLM-L6, so the demo stays within a few minutes on 2 CPU cores
model = "minilm-l6"
method = "full"
epochs = 2
batch_size = 16
max_length = 128

[transfer]
augment = ["mask", "ngram"]
augment_factor = 1

# Students distilled from the teacher's soft targets on the transfer set
[[students]]
name = "static"
kind = "static"
embeddings = "teacher"  # Model2Vec-style vectors distilled from the teacher's own tokens

[[students]]
name = "bilstm"
kind = "bilstm"
# smaller than Tang et al.'s 300 x 300, and a learning rate three times the default, so that
# six epochs on the sample reach the teacher (1e-3 left it at 89 % of the teacher after six)
dim = 128
hidden = 128
training = {{ epochs = 6, learning_rate = 3e-3, head_learning_rate = 3e-3 }}

[compress]
# int8 ONNX copies of both students (models/static-int8, models/bilstm-int8), evaluated beside them
precisions = ["int8"]

[evaluate]
{threads}latency_samples = 100
min_messages = 256

[report]
title = "textdistill demo: customer-service emails"

[suggest]
# what to annotate next: the teacher's most uncertain message of each of 50 clusters of the
# unannotated pool (its transfer-set logits are reused: nothing is scored again); and which
# training annotations look wrong (TF-IDF out of fold, cleanlab), the sample's planted errors among them
strategy = "diverse"
k = 50
check_folds = 5
"""


def planted_errors_found(out: str | Path, state: RunState) -> str | None:
    """How many of the annotations the sample planted wrong the label check ranks first, as a sentence."""
    if state.label_check is None:
        return None
    with (Path(out) / "data" / "label_errors.csv").open(encoding="utf-8", newline="") as handle:
        planted = {row["id"] for row in csv.DictReader(handle)}
    check = state.label_check
    found = planted & {check.ids[i] for i in check.ranked(len(planted))}
    return f"The sample has {len(planted)} annotations planted wrong (data/label_errors.csv): {len(found)} of them are the check's {len(planted)} most suspect."


def run_demo(out: str | Path, *, threads: int | None = None, seed: int = 0) -> RunState:
    """Write the sample data and a config under ``out``, run the pipeline, return its state."""
    out = Path(out)
    write_sample_dataset(out / "data", seed=seed)
    config_path = out / "config.toml"
    config_path.write_text(
        DEMO_CONFIG.format(path=config_path, threads=f"threads = {threads}\n" if threads else ""), encoding="utf-8"
    )
    return Pipeline(RunConfig.from_toml(config_path), out / "run", config_path=config_path).run()


def best_student(out: str | Path) -> Path:
    """The directory of the demo's best student: the highest macro-F1 on the test set, the
    lower batch-1 latency on a tie (``textdistill demo --serve`` serves it)."""
    out = Path(out)
    names = [table["name"] for table in tomllib.loads((out / "config.toml").read_text(encoding="utf-8")).get("students", [])]
    if not names:
        raise TextdistillError(f"{out / 'config.toml'} has no [[students]]: there is no student to serve.")
    evaluations = {name: json.loads((out / "run" / "evaluations" / f"{name}.json").read_text(encoding="utf-8")) for name in names}
    best = max(names, key=lambda name: (evaluations[name]["macro_f1"], -(evaluations[name].get("latency_ms_p50") or math.inf)))
    return out / "run" / "models" / best
