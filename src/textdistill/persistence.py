"""Reading and writing arrays without pickles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from textdistill.errors import ModelError


def save_arrays(arrays: dict[str, np.ndarray], path: str | Path) -> None:
    """Write numpy arrays as safetensors.

    safetensors writes an array's buffer as if it were C-ordered, so a Fortran-ordered array
    (as scikit-learn's ``coef_`` can be) would come back scrambled: make every array
    C-contiguous first.
    """
    save_file({name: np.ascontiguousarray(array) for name, array in arrays.items()}, str(path))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    return load_file(str(path))


def require_file(path: Path) -> Path:
    """``path``, or a :class:`ModelError` saying that this file of a saved model is missing."""
    if not path.is_file():
        raise ModelError("is missing: the model directory is incomplete.", file=path)
    return path


def load_model_arrays(path: Path, framework: str = "numpy") -> dict:
    """The tensors of a saved model's safetensors file (numpy arrays, or torch tensors with
    ``framework="pt"``); a :class:`ModelError` naming the file when it is missing or unreadable."""
    require_file(path)
    try:
        with safe_open(str(path), framework=framework) as handle:
            return {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types, and OSError
        raise ModelError(f"is not a readable safetensors file ({exc}): it is damaged or cut short.", file=path) from None


def check_shapes(path: Path, arrays: dict, expected: dict[str, tuple[int | None, ...]]) -> None:
    """The arrays of ``path`` are exactly ``expected`` (name: shape, None for any size): a
    :class:`ModelError` naming the first that is missing, extra or of another shape."""
    if set(arrays) != set(expected):
        raise ModelError(
            f"holds the arrays {sorted(arrays)}, but this model needs {sorted(expected)}: the file does not belong to this model.",
            file=path,
        )
    for name, shape in expected.items():
        actual = tuple(arrays[name].shape)
        if len(actual) != len(shape) or any(want is not None and want != got for want, got in zip(shape, actual)):
            wanted = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ModelError(
                f"holds {name} of shape {actual}, but the manifest and the other files need {wanted}: "
                "the file does not belong to this model.",
                file=path,
            )
