"""A model exported to ONNX: predicts with ONNX Runtime, numpy and ``tokenizers``, no torch.

The graph maps padded token ids to ``logits`` and ``probabilities`` (softmax, or per-label
sigmoids for multi-label models), head included; the texts become ids through the featurizer
saved beside it (:mod:`textdistill.compress.features`). ``textdistill compress`` writes such a
directory, in fp32 or with int8 weights, and every command that loads a model (evaluate,
report, serve) takes it like any other.

Saved as ``model.onnx``, the vocabulary files and ``manifest.json``, whose ``config.onnx`` says how
texts are read and ``config.compression`` what it was made from.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from textdistill.compress.features import Featurizer, load_featurizer
from textdistill.errors import TextdistillError
from textdistill.models.base import TextClassifier, register_model
from textdistill.models.manifest import Manifest
from textdistill.threads import thread_limit

GRAPH_FILE = "model.onnx"
OUTPUTS = ("logits", "probabilities")


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise TextdistillError("ONNX models need onnxruntime: pip install 'textdistill[onnx]'.") from None
    return onnxruntime


@register_model("onnx")
class OnnxClassifier(TextClassifier):
    """An exported model: ONNX Runtime over the graph, the featurizer over the texts."""

    def __init__(self, graph: Path, featurizer: Featurizer, *, settings: dict[str, Any], n_params: int) -> None:
        super().__init__()
        self.graph = Path(graph)
        self.featurizer = featurizer
        self.settings = settings  # manifest config["onnx"]
        self._n_params = n_params
        self._session = None
        self._session_threads: int | None = None

    @property
    def precision(self) -> str:
        return self.settings.get("precision", "fp32")

    def _fit(self, texts, label_sets, validation=None) -> None:
        raise TextdistillError("an ONNX model is made by `textdistill compress` from a trained model; it cannot be trained.")

    # -- predicting ------------------------------------------------------------------------
    def _run(self, texts: Sequence[str], output: str) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), len(self._space())), dtype=np.float32)
        session = self.session()
        for rows, inputs in self.featurizer.batches(texts, self.settings.get("predict_batch_size", 64)):
            out[rows] = session.run([output], inputs)[0]
        return out

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (n, L), in length-sorted batches."""
        return self._run(texts, "logits")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The graph's own probabilities: softmax rows, or per-label sigmoids for multi-label."""
        return self._run(texts, "probabilities")

    def session(self):
        """The ONNX Runtime session, (re)started with the thread count in force: the innermost
        :func:`~textdistill.threads.limit_threads` block, else ``OMP_NUM_THREADS``, else
        ONNX Runtime's default (one thread per physical core)."""
        limit = thread_limit()
        if limit is None and os.environ.get("OMP_NUM_THREADS", "").isdigit():
            limit = int(os.environ["OMP_NUM_THREADS"])
        if self._session is None or limit != self._session_threads:
            onnxruntime = _import_onnxruntime()
            options = onnxruntime.SessionOptions()
            if limit:
                options.intra_op_num_threads = limit
                options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(str(self.graph), options, providers=["CPUExecutionProvider"])
            self._session_threads = limit
        return self._session

    @property
    def n_params(self) -> int:
        return self._n_params

    # -- persistence -----------------------------------------------------------------------
    def _save_weights(self, directory: Path) -> None:
        target = directory / GRAPH_FILE
        if target.resolve() != self.graph.resolve():
            shutil.copyfile(self.graph, target)
        self.featurizer.save(directory)

    @classmethod
    def _load_weights(cls, directory: Path, manifest: Manifest) -> Self:
        settings = manifest.config.get("onnx")
        if not settings or not (directory / GRAPH_FILE).is_file():
            raise TextdistillError(f"{directory} is not a complete ONNX model: it needs {GRAPH_FILE} and config.onnx in its manifest.")
        featurizer = load_featurizer(directory, settings["features"])
        return cls(directory / GRAPH_FILE, featurizer, settings=settings, n_params=manifest.n_params)
