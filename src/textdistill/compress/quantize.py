"""Dynamic int8 quantization of an ONNX graph with ONNX Runtime.

Weights of matrix products, embedding gathers and LSTMs are stored as int8 with a scale;
activations are quantized on the fly per batch (dynamic quantization: no calibration data).
The speed-up depends on the CPU's integer dot-product instructions (AVX-512 VNNI, AVX-VNNI,
AMX), which evaluations record; the accuracy change is measured like any model's.
Fully connected layers exported as ``Gemm`` (the small heads) stay fp32: ONNX Runtime's dynamic
quantization covers ``MatMul`` only.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from textdistill.errors import TextdistillError

QUANTIZED_OPS = ("MatMul", "Gather", "LSTM", "Attention")


def _op_counts(graph: Path) -> Counter:
    import onnx

    return Counter(node.op_type for node in onnx.load(str(graph), load_external_data=False).graph.node)


def quantize_int8(fp32_graph: Path, int8_graph: Path) -> dict[str, int]:
    """Write the int8 version of ``fp32_graph``; returns how many nodes of each new (quantized)
    op type it has, e.g. ``{"MatMulInteger": 12, "DynamicQuantizeLinear": 12}``."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise TextdistillError("int8 quantization needs onnxruntime and onnx: pip install 'textdistill[onnx]'.") from None
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process applies to static (calibrated) quantization
    try:
        quantize_dynamic(fp32_graph, int8_graph, op_types_to_quantize=list(QUANTIZED_OPS), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    before, after = _op_counts(fp32_graph), _op_counts(int8_graph)
    return {op: count for op, count in sorted(after.items()) if op not in before}
