"""Typed settings from plain mappings (TOML tables, ``--set key=value``), with unknown keys named."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from textdistill.errors import TextdistillError

T = TypeVar("T")


def from_settings(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """``cls(**data)`` for a dataclass, or an error that lists the settings ``what`` has."""
    unknown = set(data) - set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    if unknown:
        raise TextdistillError(f"unknown {what} setting(s) {sorted(unknown)}; the settings are: {', '.join(cls.__dataclass_fields__)}")  # type: ignore[attr-defined]
    return cls(**data)
