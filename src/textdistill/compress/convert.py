"""``textdistill compress``: a trained model as an ONNX model directory, fp32 or int8.

The exported graph is checked against the model it came from on a handful of probe texts
before anything is written: fp32 probabilities must match within ``PARITY_TOLERANCE``, int8 ones
(expected to differ more) within ``int8_tolerance`` (default ``INT8_TOLERANCE``, 0.03). The
largest differences and the tolerances are recorded in the manifest (``config.compression``);
the accuracy change is for ``evaluate`` to measure. Automation thresholds (``automation.json``)
come along, tied to the copy and marked as chosen on the source's kind: run ``textdistill
automate`` on the copy to choose them on its own (int8) probabilities. So does the reject option
(``out_of_scope.json``, its score computed from the copy's own logits): ``textdistill reject``
on the copy fits it anew.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from textdistill.compress import INT8_TOLERANCE
from textdistill.compress.export import OPSET, PROBE_TEXTS, export_graph
from textdistill.compress.onnx_model import OnnxClassifier
from textdistill.compress.quantize import quantize_int8
from textdistill.errors import TextdistillError
from textdistill.models.automation import AUTOMATION_FILE, read_automation, rebind
from textdistill.models.base import load_model
from textdistill.models.out_of_scope import OUT_OF_SCOPE_FILE, STATS_FILE, read_out_of_scope
from textdistill.models.out_of_scope import rebind as rebind_out_of_scope

PARITY_TOLERANCE = 1e-4
PREDICT_BATCH_SIZE = 64


def probe_change(model: OnnxClassifier) -> float:
    """The largest probability change from its source on the probe texts, at the model's precision."""
    compression = model.manifest.config["compression"]
    return compression[f"{compression['precision']}_max_abs_diff"]


def compress_model(model_dir: str | Path, out_dir: str | Path, *, int8: bool = False, int8_tolerance: float = INT8_TOLERANCE) -> OnnxClassifier:
    """Export the model saved in ``model_dir`` to ONNX (int8 weights when ``int8``) into ``out_dir``;
    refused when its probabilities on the probe texts move by more than the precision's tolerance."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not 0 < int8_tolerance <= 1:  # also refuses NaN
        raise TextdistillError(f"the int8 tolerance is a largest probability change, above 0 and at most 1, not {int8_tolerance}.")
    model = load_model(model_dir)
    automation = read_automation(model_dir, model.manifest)  # checked before anything is written
    out_of_scope = read_out_of_scope(model_dir, model.manifest)
    if out_dir.resolve() == model_dir.resolve():
        raise TextdistillError(f"--out {out_dir} is the model's own directory; write the compressed model somewhere else.")
    expected = model.predict_proba(list(PROBE_TEXTS))
    with tempfile.TemporaryDirectory(prefix="textdistill-onnx-") as tmp:
        fp32_graph = Path(tmp) / "fp32.onnx"
        featurizer = export_graph(model, fp32_graph)
        settings = {"features": {"kind": featurizer.kind, **featurizer.settings()}, "precision": "fp32", "opset": OPSET, "predict_batch_size": PREDICT_BATCH_SIZE}
        fp32 = OnnxClassifier(fp32_graph, featurizer, settings=settings, n_params=model.n_params)
        fp32.label_space = model.label_space
        fp32_gap = float(np.abs(fp32.predict_proba(list(PROBE_TEXTS)) - expected).max())
        if fp32_gap > PARITY_TOLERANCE:
            raise TextdistillError(
                f"the ONNX export of {model_dir} does not reproduce it: probabilities differ by up to {fp32_gap:.2e} "
                f"(tolerance {PARITY_TOLERANCE:g}) on the probe texts. Nothing was written; please report this with the model's kind ({model.kind})."
            )
        compression = {
            "source": str(model_dir.resolve()),
            "source_kind": model.kind,
            "precision": "fp32",
            "fp32_max_abs_diff": fp32_gap,
            "fp32_tolerance": PARITY_TOLERANCE,
        }
        compressed = fp32
        if int8:
            int8_graph = Path(tmp) / "int8.onnx"
            compression["int8_nodes"] = quantize_int8(fp32_graph, int8_graph)
            compressed = OnnxClassifier(int8_graph, featurizer, settings={**settings, "precision": "int8"}, n_params=model.n_params)
            compressed.label_space = model.label_space
            int8_gap = float(np.abs(compressed.predict_proba(list(PROBE_TEXTS)) - expected).max())
            if int8_gap > int8_tolerance:
                raise TextdistillError(
                    f"the int8 copy of {model_dir} changes its probabilities by up to {int8_gap:.3g} on the probe texts, more than "
                    f"the int8 tolerance of {int8_tolerance:g}. Nothing was written. Keep full precision (--onnx without --int8; "
                    "precisions = [\"fp32\"] in [compress]), or accept the change with a higher --int8-tolerance "
                    "([compress] int8_tolerance) and let evaluate measure what it costs."
                )
            compression.update(precision="int8", int8_max_abs_diff=int8_gap, int8_tolerance=int8_tolerance)
        compressed.thresholds, compressed.threshold_mode, compressed.own_thresholds = model.thresholds, model.threshold_mode, model.own_thresholds
        compressed.save(
            out_dir,
            # "data": how the source read its input files, so that commands read them alike.
            config={"onnx": compressed.settings, "compression": compression, "data": model.manifest.config.get("data", {}), "source": model.manifest.config},
            training_data=model.manifest.training_data,
        )
    if automation is not None:
        rebind(automation, compressed.manifest, model.kind).write(out_dir)
    else:
        (out_dir / AUTOMATION_FILE).unlink(missing_ok=True)  # an earlier copy's, chosen for another model
    if out_of_scope is not None:
        rebind_out_of_scope(out_of_scope, compressed.manifest, model.kind).write(out_dir)
    else:
        for name in (OUT_OF_SCOPE_FILE, STATS_FILE):
            (out_dir / name).unlink(missing_ok=True)
    return OnnxClassifier.load(out_dir)
