"""The one interface every model shares: baseline, teachers and students.

A saved model is a directory holding ``manifest.json`` (what it is, its labels, thresholds,
config, training data hash, package versions, metrics) and weights as safetensors. Nothing is
pickled, so loading a model from someone else cannot run code. The manifest also records the
sha256 of each file the model wrote and of its own fields, so a file cut short or changed by a
single byte is refused with a :class:`~textdistill.errors.ModelError` naming it, never loaded as
a different model.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from textdistill.data.labels import LabelSpace
from textdistill.errors import ModelError, TextdistillError
from textdistill.models.manifest import Manifest
from textdistill.models.thresholds import ThresholdMode, check_threshold_mode, own_threshold_labels, tune_thresholds

MANIFEST_FILE = "manifest.json"

_REGISTRY: dict[str, type[TextClassifier]] = {}
# Built-in kinds are imported only when a model of that kind is loaded, so that loading a
# small model does not pay for the libraries of every other kind.
_BUILT_IN = {
    "baseline": "textdistill.models.baseline",
    "transformer": "textdistill.models.transformer",
    "static": "textdistill.students.static",
    "bilstm": "textdistill.students.bilstm",
    "early_exit": "textdistill.students.early_exit",
    "onnx": "textdistill.compress.onnx_model",
}


def register_model(kind: str):
    """Class decorator: make a model kind loadable by name from its manifest."""

    def decorate(cls: type[TextClassifier]) -> type[TextClassifier]:
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return decorate


class TextClassifier(ABC):
    """sklearn-shaped text classifier over a :class:`LabelSpace`.

    Subclasses implement ``_fit``, ``predict_proba``, ``_save_weights``, ``_load_weights`` and
    ``n_params``; thresholds, label decoding, manifests and persistence live here.
    """

    kind: ClassVar[str] = "abstract"

    def __init__(self) -> None:
        self.label_space: LabelSpace | None = None
        self.thresholds: np.ndarray | None = None
        self.threshold_mode: ThresholdMode = "global"
        self.own_thresholds: list[str] | None = None  # labels tuned on their own (see models.thresholds)
        self.manifest: Manifest | None = None

    # -- training --------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        *,
        multi_label: bool,
        hierarchy_sep: str | None = None,
        validation: tuple[Sequence[str], Sequence[Sequence[str]]] | None = None,
        threshold_mode: ThresholdMode = "global",
    ) -> Self:
        """Train on texts and their label sets (single-label: one label per set).

        For multi-label models, decision thresholds are tuned on ``validation`` when given
        (``global``: one threshold maximising micro-F1; ``per_label``: one per label
        maximising its F1; ``auto``: per label where the label has enough validation examples,
        see :mod:`textdistill.models.thresholds`), else fixed at 0.5.
        """
        check_threshold_mode(threshold_mode)  # before training, not after it
        self.label_space = LabelSpace.from_label_sets(label_sets, multi_label, hierarchy_sep)
        if len(self.label_space) < 2 and not multi_label:
            raise TextdistillError(
                f"the training data has a single class ({self.label_space.labels[0]!r}); "
                "a classifier needs at least two. Add messages of other labels."
            )
        self._fit(list(texts), label_sets, validation)
        self.tune_thresholds(validation, threshold_mode)
        return self

    def tune_thresholds(
        self, validation: tuple[Sequence[str], Sequence[Sequence[str]]] | None, threshold_mode: ThresholdMode = "global"
    ) -> None:
        """Multi-label decision thresholds from validation data (0.5 without), and which labels got
        their own; nothing for single-label."""
        check_threshold_mode(threshold_mode)
        self.threshold_mode = threshold_mode
        space = self._space()
        if not space.multi_label:
            return
        self.thresholds, self.own_thresholds = np.full(len(space), 0.5), []
        if validation is not None and len(validation[0]):
            proba = self.predict_proba(list(validation[0]))
            y = space.encode(validation[1])
            # for the rule predict_label_sets applies, hierarchy included, so tuning sees the real rule
            self.thresholds = tune_thresholds(y, proba, threshold_mode, space.parent_indices())
            self.own_thresholds = [label for label, own in zip(space.labels, own_threshold_labels(y, threshold_mode)) if own]

    @abstractmethod
    def _fit(
        self,
        texts: list[str],
        label_sets: Sequence[Sequence[str]],
        validation: tuple[Sequence[str], Sequence[Sequence[str]]] | None,
    ) -> None:
        """Learn the weights; ``validation`` is there for models that stop early on it."""

    # -- prediction ------------------------------------------------------------------------
    @abstractmethod
    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """(n, L) logits: what a teacher hands on to students as soft targets."""

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, L) probabilities: softmax rows for single-label, per-label sigmoids for multi-label."""

    def predict_label_sets(self, texts: Sequence[str], proba: np.ndarray | None = None) -> list[tuple[str, ...]]:
        """Predicted label sets by :meth:`LabelSpace.predict`: for multi-label, thresholds applied to
        hierarchy-consistent probabilities and ancestors included (a child implies its parent)."""
        proba = self.predict_proba(texts) if proba is None else proba
        return self._space().predict(proba, self.thresholds)

    def predict(self, texts: Sequence[str]) -> list[str] | list[list[str]]:
        """Labels: one string per message (single-label) or a list per message (multi-label)."""
        sets = self.predict_label_sets(texts)
        if self._space().multi_label:
            return [list(s) for s in sets]
        return [s[0] for s in sets]

    def label_confidences(self, proba_row: np.ndarray) -> dict[str, float]:
        """Each label's confidence for one message, by :meth:`LabelSpace.confidences`: a parent's is
        never below its children's (single-label: their sum; multi-label: at least their highest)."""
        return self._space().confidences(proba_row)

    # -- size ------------------------------------------------------------------------------
    @property
    @abstractmethod
    def n_params(self) -> int:
        """Number of learned parameters."""

    # -- persistence -----------------------------------------------------------------------
    def save(
        self,
        directory: str | Path,
        *,
        config: dict[str, Any],
        training_data: dict[str, Any],
        metrics: dict[str, Any] | None = None,
    ) -> Path:
        """Write weights and ``manifest.json`` (with ``metrics`` when known) to ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        space = self._space()
        before = _file_states(directory)
        self._save_weights(directory)
        written = [name for name, state in _file_states(directory).items() if before.get(name) != state]
        previous = self.manifest
        self.manifest = Manifest.create(
            kind=self.kind,
            label_space=space,
            thresholds=None if self.thresholds is None else [float(t) for t in self.thresholds],
            threshold_mode=self.threshold_mode if space.multi_label else None,
            own_thresholds=self.own_thresholds if space.multi_label else None,
            config=config,
            training_data=training_data,
            n_params=self.n_params,
            metrics=metrics if metrics is not None else (previous.metrics if previous else None),
        )
        self.manifest.seal(directory, sorted({*written, *_kept_files(previous, directory, written)}))
        self.manifest.write(directory / MANIFEST_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """The model saved in ``directory``; a :class:`ModelError` naming the file when any part
        of it is missing, damaged or does not fit the rest."""
        directory = Path(directory)
        manifest = Manifest.read(directory / MANIFEST_FILE)
        manifest.verify_files(directory)
        try:
            model = cls._load_weights(directory, manifest)
        except ModelError:
            raise
        except TextdistillError as exc:
            raise ModelError(str(exc), file=directory) from exc
        except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes a reader raise
            # Each kind checks what it can name precisely; this catches what its readers
            # (safetensors, JSON, torch, tokenizers, ONNX Runtime) find first.
            raise ModelError(f"cannot be loaded as a {manifest.kind} model ({type(exc).__name__}: {exc}).", file=directory) from exc
        model.manifest = manifest
        model.label_space = manifest.label_space
        model.thresholds = None if manifest.thresholds is None else np.asarray(manifest.thresholds)
        model.threshold_mode = manifest.threshold_mode or "global"
        model.own_thresholds = manifest.own_thresholds
        return model

    @abstractmethod
    def _save_weights(self, directory: Path) -> None: ...

    @classmethod
    @abstractmethod
    def _load_weights(cls, directory: Path, manifest: Manifest) -> Self: ...

    def _space(self) -> LabelSpace:
        if self.label_space is None:
            raise TextdistillError(f"this {self.kind} model is not trained yet: call fit() or load() first.")
        return self.label_space


def known_kinds() -> list[str]:
    """The model kinds this textdistill loads: the built-in ones and any registered since."""
    return sorted({*_BUILT_IN, *_REGISTRY})


def load_model(directory: str | Path) -> TextClassifier:
    """Load any saved textdistill model; its manifest says which kind it is. A directory that
    is not a whole, undamaged saved model is a :class:`ModelError` naming the file at fault."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ModelError(
            f"is not a saved textdistill model: it has no {MANIFEST_FILE}.",
            file=directory,
            hint="point to the directory that `textdistill baseline --out` (or another training command) wrote.",
        )
    kind = Manifest.read(path).kind
    if kind in _BUILT_IN and kind not in _REGISTRY:
        importlib.import_module(_BUILT_IN[kind])
    if kind not in _REGISTRY:
        raise ModelError(
            f"names model kind {kind!r}, which this textdistill does not know (known: {', '.join(known_kinds())}).",
            file=path,
            hint="upgrade textdistill, or install the extra that provides this kind.",
        )
    return _REGISTRY[kind].load(directory)


def _file_states(directory: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, size, modification time) of each file under ``directory`` but the manifest."""
    return {
        path.relative_to(directory).as_posix(): (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        for path in directory.rglob("*")
        if path.is_file() and path.name != MANIFEST_FILE and not path.name.endswith(".tmp") and (stat := path.stat())
    }


def _kept_files(previous: Manifest | None, directory: Path, written: list[str]) -> list[str]:
    """Files a model saved in place left as they were (an ONNX graph is not copied onto
    itself) but its previous manifest listed: they still belong to the model."""
    listed = (previous.checksums or {}).get("files", {}) if previous else {}
    return [name for name in listed if name not in written and (directory / name).is_file()]
