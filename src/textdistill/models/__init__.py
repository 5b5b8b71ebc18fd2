"""Models: the shared interface and the built-in kinds (imported on first use)."""

from textdistill.models.base import TextClassifier, load_model, register_model

__all__ = ["TextClassifier", "TfidfBaseline", "load_model", "register_model"]


def __getattr__(name: str):
    if name == "TfidfBaseline":
        from textdistill.models.baseline import TfidfBaseline

        return TfidfBaseline
    raise AttributeError(name)
