"""textdistill: distil a big transformer classifier of business messages into a small, fast one."""

from importlib import metadata

from textdistill.models.base import load_model as load

try:
    __version__ = metadata.version("textdistill")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__", "load"]
