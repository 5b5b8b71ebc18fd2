"""Compression for deployment: ONNX export, int8 weights, torch-free prediction.

``compress_model`` (torch needed) lives in :mod:`textdistill.compress.convert`; the saved result
loads as an :class:`~textdistill.compress.onnx_model.OnnxClassifier` without torch.
"""
