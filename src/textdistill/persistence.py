"""Reading and writing arrays without pickles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file


def save_arrays(arrays: dict[str, np.ndarray], path: str | Path) -> None:
    """Write numpy arrays as safetensors.

    safetensors writes an array's buffer as if it were C-ordered, so a Fortran-ordered array
    (as scikit-learn's ``coef_`` can be) would come back scrambled: make every array
    C-contiguous first.
    """
    save_file({name: np.ascontiguousarray(array) for name, array in arrays.items()}, str(path))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    return load_file(str(path))
