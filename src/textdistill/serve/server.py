"""Run the prediction service with uvicorn, stopping gracefully on SIGTERM / SIGINT."""

from __future__ import annotations

import copy
import signal
from pathlib import Path

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from textdistill.errors import TextdistillError
from textdistill.serve.app import create_app
from textdistill.serve.settings import ServeSettings

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_server(
    model_dir: str | Path,
    settings: ServeSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    access_log: bool = False,
) -> None:
    """Serve the model in ``model_dir`` until SIGTERM or SIGINT.

    On either signal uvicorn stops accepting connections, requests in flight finish, the
    batcher answers every queued message, and this returns (the process exits 0).
    """
    app = create_app(model_dir, settings)
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, log_config=_logging_config(), lifespan="on")
    server = uvicorn.Server(config)
    # uvicorn takes these signals while it runs and, once it has shut down, raises the one it
    # caught again against the handlers found before it started; ignoring them here makes a
    # graceful stop end normally instead of killing the process afterwards.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise TextdistillError(f"the service did not start on {host}:{port}; the log above says why.")


def _logging_config() -> dict:
    """uvicorn's logging, with textdistill's own loggers (model errors) on the same handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["textdistill"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
