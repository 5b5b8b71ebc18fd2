"""A model kind for the Ray tests: a TF-IDF baseline whose process dies the first time it scores.

The first ``decision_function`` call in any process creates ``crashed`` in the model directory
(atomically, so only one caller does) and kills its own process; later calls score normally.
Ray actors run in other processes, so the tests put tests/ on the workers' PYTHONPATH and have
Ray call :func:`register` in each worker as it starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from textdistill.models.base import register_model
from textdistill.models.baseline import TfidfBaseline

KIND = "crash_once"
MARKER = "crashed"


class CrashOnce(TfidfBaseline):
    @classmethod
    def load(cls, directory):
        model = super().load(directory)
        model.marker = Path(directory) / MARKER
        return model

    def decision_function(self, texts):
        try:
            self.marker.touch(exist_ok=False)
        except FileExistsError:
            return super().decision_function(texts)
        os._exit(1)


def register() -> None:
    """Make the kind loadable in this process."""
    register_model(KIND)(CrashOnce)
