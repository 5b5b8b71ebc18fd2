"""``manifest.json``: what produced a saved artefact, so results can be reproduced."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from textdistill.data.labels import LabelSpace
from textdistill.errors import ModelError

# Removing this entry from a manifest.json turns its checks off: for a manifest edited by hand.
CHECKSUMS = "checksums"
_UNCHECKED_HINT = (
    f"if you edited it on purpose, delete its \"{CHECKSUMS}\" entry to load it unchecked; "
    "otherwise copy the model directory again from where it came from, or train (or compress) it again."
)

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
    # multi-label: the labels whose threshold was tuned on their own validation examples (the
    # others share the global one); None in manifests written before textdistill recorded them
    own_thresholds: list[str] | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION
    # {"fields": sha256 of the other fields, "files": {relative path: sha256}}; None in manifests
    # written before textdistill recorded them, which load unchecked.
    checksums: dict[str, Any] | None = None

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

    def seal(self, directory: Path, files: Sequence[str]) -> None:
        """Record the sha256 of ``files`` (paths relative to ``directory``) and of the other fields,
        so that :meth:`read` and :meth:`verify_files` find any byte of the model changed since."""
        digests = {name: file_sha256(directory / name) for name in sorted(files)}
        fields = {k: v for k, v in asdict(self).items() if k != CHECKSUMS}
        self.checksums = {"fields": _fields_sha256(json.loads(json.dumps(fields, ensure_ascii=False))), "files": digests}

    def verify_files(self, directory: Path) -> None:
        """Each file the manifest lists must be there with the bytes it was saved with."""
        for name, digest in (self.checksums or {}).get("files", {}).items():
            path = directory / name
            if not path.is_file():
                raise ModelError("is missing (the model was saved with it).", file=path)
            if file_sha256(path) != digest:
                raise ModelError(
                    "does not match the sha256 recorded in manifest.json when the model was saved: "
                    "the file is damaged (cut short or altered).",
                    file=path,
                )

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest at ``path``, its fields checked: a :class:`ModelError` for anything a
        saved model's manifest cannot be."""
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise ModelError(
                "is missing: this directory is not a saved textdistill model.",
                file=path,
                hint="point to the directory that `textdistill baseline --out` (or another training command) wrote.",
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"is not valid JSON ({exc}): the model directory is damaged.", file=path) from None
        if not isinstance(data, dict):
            raise ModelError(f"holds {_JSON_NAMES[type(data)]}, not the JSON object a manifest is.", file=path)
        version = data.get("format_version", 0)
        if type(version) is not int:
            raise ModelError(f"has format_version {version!r}; it must be a whole number.", file=path)
        if version > FORMAT_VERSION:
            raise ModelError(
                f"was written by a newer textdistill (format {version}; this one reads up to {FORMAT_VERSION}).",
                file=path,
                hint="upgrade textdistill.",
            )
        _check_fields(data, path)
        checksums = data.get(CHECKSUMS)
        if checksums is not None:
            fields = {k: v for k, v in data.items() if k != CHECKSUMS}
            if not isinstance(checksums, dict) or checksums.get("fields") != _fields_sha256(fields) or not _is_digest_table(checksums.get("files")):
                raise ModelError(
                    "does not match the sha256 it recorded when the model was saved: it was altered or damaged since.",
                    file=path,
                    hint=_UNCHECKED_HINT,
                )
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "a whole number", float: "a number", bool: "true or false", type(None): "null"}


def read_beside_model(path: Path, what: str, format_version: int, build: Callable[[dict[str, Any]], Any], hint: str) -> Any:
    """A JSON file saved beside a model's manifest (``automation.json``, ``out_of_scope.json``),
    made into an object by ``build``; None when there is none. A :class:`ModelError` naming the
    file when it is newer than ``format_version``, damaged, or ``build`` cannot read it."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        if data.get("format_version", 0) > format_version:
            raise ModelError(f"was written by a newer textdistill (format {data['format_version']}; this one reads up to {format_version}).", file=path, hint="upgrade textdistill.")
        return build(data)
    except ModelError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise ModelError(f"is not {what} this textdistill reads ({type(exc).__name__}: {exc}).", file=path, hint=hint) from None


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fields_sha256(fields: dict[str, Any]) -> str:
    """A digest of parsed JSON, blind to formatting (indentation, key order)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _is_digest_table(files: Any) -> bool:
    return isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())


def _is(value: Any, *types: type) -> bool:
    """isinstance, with bool not counting as a number (JSON true is no label count)."""
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _check_fields(data: dict[str, Any], path: Path) -> None:
    """The fields a manifest needs, of the types it needs them in."""
    required = {
        "kind": (str,), "labels": (list,), "multi_label": (bool,), "config": (dict,),
        "hierarchy_sep": (str, type(None)), "thresholds": (list, type(None)), "threshold_mode": (str, type(None)),
        "training_data": (dict,), "n_params": (int,),
    }
    optional = {"versions": (dict,), "metrics": (dict, type(None)), "own_thresholds": (list, type(None)), "created": (str,)}
    missing = [name for name in required if name not in data]
    if missing:
        raise ModelError(f"lacks the field(s) {', '.join(missing)} that every saved model's manifest has.", file=path)
    for name, types in (*required.items(), *optional.items()):
        if name in data and not _is(data[name], *types):
            expected = " or ".join(_JSON_NAMES[t] for t in types)
            raise ModelError(f"has {name} = {json.dumps(data[name])[:100]}; it must be {expected}.", file=path)
    labels = data["labels"]
    if not labels or not all(_is(label, str) for label in labels) or len(set(labels)) != len(labels):
        raise ModelError("has labels that are not a list of distinct strings.", file=path)
    known = set(labels)
    if not all(_is(label, str) and label in known for label in data.get("own_thresholds") or []):
        raise ModelError("has own_thresholds that are not all labels of the model.", file=path)
    thresholds = data["thresholds"]
    if thresholds is not None and (len(thresholds) != len(labels) or not all(_is(t, int, float) for t in thresholds)):
        raise ModelError(f"has {len(thresholds)} thresholds for {len(labels)} labels; it needs one number per label.", file=path)
    if data["multi_label"] and thresholds is None:
        raise ModelError("is multi-label but has no thresholds (one per label).", file=path)
