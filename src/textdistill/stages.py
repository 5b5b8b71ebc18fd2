"""The stages of ``textdistill run``, in the order they run, and what each does.

A module of its own, free of heavy imports, so that ``--help`` can list the stages without
loading the pipeline.
"""

from __future__ import annotations

STAGES = {
    "load": "read the [data] files (train, test, unannotated, validation)",
    "split": "hold validation messages out of train, unless [data] has them",
    "baseline": "train the TF-IDF + logistic regression baseline",
    "teach": "fine-tune the [teacher] transformer",
    "label": "the teacher's logits on train, unannotated and augmented texts",
    "distill": "train each [[students]] model on those logits",
    "compress": "ONNX copies (fp32, int8) of the [compress] models",
    "validate": "per model: automation thresholds; single-label: a reject option",
    "evaluate": "quality and cost of every model on the test messages",
    "report": "the side-by-side report: report.md and report.html",
    "suggest": "what to annotate next, and which annotations look wrong",
}
STAGE_ORDER = tuple(STAGES)
DEFAULT_STAGES = ("load", "split", "baseline", "evaluate", "report")  # without [run] stages: no transformer training
