"""Compression for deployment: ONNX export, int8 weights, torch-free prediction.

``compress_model`` (torch needed) lives in :mod:`textdistill.compress.convert`; the saved result
loads as an :class:`~textdistill.compress.onnx_model.OnnxClassifier` without torch.
"""

# The largest probability change on the probe texts an int8 copy may make by default (int8
# weights cost precision; fp32 must match within compress.convert.PARITY_TOLERANCE). Here, not in
# convert, so that settings can name it without importing torch.
INT8_TOLERANCE = 0.03
