"""HTTP prediction service for any saved model: ``textdistill serve MODEL_DIR``.

``app`` (the FastAPI app), ``batching`` (micro-batching of concurrent requests), ``predictor``
(labels and confidences from the model), ``schema`` (request and response bodies), ``errors``
(JSON error answers), ``body_limit`` and ``server`` (uvicorn with graceful shutdown). FastAPI
and uvicorn come with the ``serve`` extra; :func:`require_serve_extra` says so when missing.
"""

from __future__ import annotations

import importlib

from textdistill.errors import TextdistillError
from textdistill.serve.settings import ServeSettings

_SERVE_PACKAGES = ("fastapi", "uvicorn")

__all__ = ["ServeSettings", "require_serve_extra"]


def require_serve_extra() -> None:
    """Raise an error naming the pip command when FastAPI or uvicorn is not installed."""
    missing = []
    for name in _SERVE_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise TextdistillError(
            f"serving needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed. "
            "Install the serve extra: pip install 'textdistill[serve]'."
        )
