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
from textdistill.errors import ModelError, TextdistillError
from textdistill.models.base import MANIFEST_FILE, TextClassifier, register_model
from textdistill.models.manifest import Manifest
from textdistill.persistence import require_file
from textdistill.threads import thread_limit

GRAPH_FILE = "model.onnx"
OUTPUTS = ("logits", "probabilities")
_PROBE_TEXTS = ("", "Hello, where is my order?")  # run at load: an empty message and a short one


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
        if not isinstance(settings, dict) or not isinstance(settings.get("features"), dict):
            raise ModelError("has no config.onnx.features, which an ONNX model's manifest holds.", file=directory / MANIFEST_FILE)
        featurizer = load_featurizer(directory, settings["features"])
        model = cls(require_file(directory / GRAPH_FILE), featurizer, settings=settings, n_params=manifest.n_params)
        model.label_space = manifest.label_space  # the probe run needs it; load() sets it again
        model._check_graph()
        return model

    def _check_graph(self) -> None:
        """Start the session and run two probe messages now, so that a graph ONNX Runtime
        refuses, one whose inputs and outputs are not this model's, or one that fails on its
        inputs is found at load time rather than at the first prediction."""
        try:
            session = self.session()
        except TextdistillError:
            raise
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own error types
            raise ModelError(f"is not a graph ONNX Runtime can run ({type(exc).__name__}: {exc}).", file=self.graph) from None
        n_labels = len(self._space())
        inputs = [i.name for i in session.get_inputs()]
        outputs = {o.name: o.shape for o in session.get_outputs()}
        widths = {shape[-1] for name, shape in outputs.items() if name in OUTPUTS and shape}
        if inputs != list(self.featurizer.input_names) or set(OUTPUTS) - set(outputs) or any(isinstance(w, int) and w != n_labels for w in widths):
            raise ModelError(
                f"takes {inputs} and gives {outputs}; this model needs inputs {list(self.featurizer.input_names)} "
                f"and outputs {list(OUTPUTS)} of {n_labels} labels: the graph does not belong to this model.",
                file=self.graph,
            )
        try:
            self._run(_PROBE_TEXTS, "probabilities")
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own error types
            raise ModelError(f"fails on the probe messages {list(_PROBE_TEXTS)} ({type(exc).__name__}: {exc}).", file=self.graph) from None
