"""``manifest.json``: what produced a saved artefact, so results can be reproduced."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from textdistill.data.labels import LabelSpace
from textdistill.errors import TextdistillError

FORMAT_VERSION = 1
_VERSIONED_PACKAGES = ("textdistill", "numpy", "scipy", "scikit-learn", "safetensors", "torch", "transformers")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def data_fingerprint(texts: Sequence[str], label_sets: Sequence[Sequence[str]] | None, source: str | None) -> dict[str, Any]:
    """A hash of the exact training texts and labels, in order."""
    digest = hashlib.sha256()
    for i, text in enumerate(texts):
        labels = list(label_sets[i]) if label_sets is not None else None
        digest.update(json.dumps([text, labels], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return {"sha256": digest.hexdigest(), "n_messages": len(texts), "source": source}


@dataclass
class Manifest:
    kind: str
    labels: list[str]
    multi_label: bool
    hierarchy_sep: str | None
    thresholds: list[float] | None
    threshold_mode: str | None
    config: dict[str, Any]
    training_data: dict[str, Any]
    n_params: int
    versions: dict[str, str] = field(default_factory=package_versions)
    metrics: dict[str, Any] | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION

    @classmethod
    def create(cls, *, kind: str, label_space: LabelSpace, **fields: Any) -> Manifest:
        return cls(
            kind=kind,
            labels=list(label_space.labels),
            multi_label=label_space.multi_label,
            hierarchy_sep=label_space.hierarchy_sep,
            **fields,
        )

    @property
    def label_space(self) -> LabelSpace:
        return LabelSpace(tuple(self.labels), self.multi_label, self.hierarchy_sep)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TextdistillError(f"{path} is missing: this directory is not a saved textdistill model.") from None
        except json.JSONDecodeError as exc:
            raise TextdistillError(f"{path} is not valid JSON ({exc}); the model directory is damaged.") from None
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise TextdistillError(
                f"{path} was written by a newer textdistill (format {data['format_version']}); upgrade textdistill."
            )
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})
