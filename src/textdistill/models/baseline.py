"""The TF-IDF + logistic regression baseline: "the model in production today".

Word 1-2 grams and character 2-5 grams (within word boundaries), sublinear TF, L2 norm;
multinomial logistic regression for single-label, one binary logistic regression per label
for multi-label (``multi_label_loss = "balanced"`` weighs each label's positives by
:func:`~textdistill.models.class_balance.positive_weights`). After training, prediction needs
only the vocabularies, the idf vectors and one weight matrix, which is exactly what is saved:
JSON and safetensors, no pickles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from textdistill.models.base import TextClassifier, register_model
from textdistill.models.class_balance import check_multi_label_loss, positive_weights
from textdistill.models.manifest import Manifest
from textdistill.errors import ModelError
from textdistill.persistence import check_shapes, load_model_arrays, require_file, save_arrays
from textdistill.progress import track

WEIGHTS_FILE = "weights.safetensors"
VOCABULARY_FILE = "vocabulary.json"


@dataclass(frozen=True)
class BaselineConfig:
    """Hyper-parameters of the TF-IDF baseline."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = 1
    max_word_features: int | None = 100_000
    max_char_features: int | None = 100_000
    C: float = 10.0
    max_iter: int = 1000
    multi_label_loss: str = "bce"  # multi-label: bce | balanced (a regression has no focal loss)

    def __post_init__(self) -> None:
        check_multi_label_loss(self.multi_label_loss, ("bce", "balanced"), " for the TF-IDF baseline (focal needs a trained network)")

    @classmethod
    def from_dict(cls, data: dict) -> BaselineConfig:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**fields)


def softmax_weights(clf: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """(weights (L, F), bias (L,)) of a fitted single-label logistic regression, one row per class,
    whose softmax gives exactly ``clf.predict_proba``.

    For two classes scikit-learn keeps one row ``w`` (the logit of the second class against the
    first); the rows ``-w/2`` and ``+w/2`` have the same softmax, since softmax([-z/2, z/2]) =
    [1 - sigmoid(z), sigmoid(z)].
    """
    coef, intercept = np.asarray(clf.coef_), np.asarray(clf.intercept_)
    if len(clf.classes_) == 2:
        return np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    return coef, intercept


def _vectorizers(config: BaselineConfig) -> dict[str, TfidfVectorizer]:
    common = {"sublinear_tf": True, "min_df": config.min_df, "lowercase": True, "dtype": np.float32}
    return {
        "word": TfidfVectorizer(analyzer="word", ngram_range=config.word_ngrams, max_features=config.max_word_features, **common),
        "char": TfidfVectorizer(analyzer="char_wb", ngram_range=config.char_ngrams, max_features=config.max_char_features, **common),
    }


@register_model("baseline")
class TfidfBaseline(TextClassifier):
    """TF-IDF features + logistic regression; one-vs-rest for multi-label."""

    def __init__(self, config: BaselineConfig | None = None) -> None:
        super().__init__()
        self.config = config or BaselineConfig()
        self._vectorizers = _vectorizers(self.config)
        # (F, L): features by labels, so that sparse features @ weights needs no transposed copy
        self._weights: np.ndarray | None = None
        self._bias: np.ndarray | None = None  # (L,)

    def _features(self, texts: Sequence[str]) -> sp.csr_matrix:
        return sp.hstack([v.transform(texts) for v in self._vectorizers.values()], format="csr")

    def _fit(self, texts: list[str], label_sets: Sequence[Sequence[str]], validation=None) -> None:
        for vectorizer in self._vectorizers.values():
            vectorizer.fit(texts)
        x = self._features(texts)
        space = self._space()
        if space.multi_label:
            y = space.encode(label_sets)
            weights = np.zeros((x.shape[1], len(space)), dtype=np.float32)
            bias = np.zeros(len(space), dtype=np.float32)
            balanced = positive_weights(y.sum(axis=0), len(y)) if self.config.multi_label_loss == "balanced" else None
            for j in track(range(len(space)), "Training one-vs-rest baseline"):
                column = y[:, j]
                if column.min() == column.max():
                    # A label that is always (or never) present: a constant, confident predictor.
                    bias[j] = 10.0 if column[0] else -10.0
                    continue
                class_weight = None if balanced is None else {0: 1.0, 1: float(balanced[j])}
                clf = LogisticRegression(C=self.config.C, max_iter=self.config.max_iter, solver="liblinear", class_weight=class_weight)
                clf.fit(x, column)
                weights[:, j], bias[j] = clf.coef_[0], clf.intercept_[0]
        else:
            clf = LogisticRegression(C=self.config.C, max_iter=self.config.max_iter)
            clf.fit(x, space.encode_single(label_sets))
            coef, intercept = softmax_weights(clf)
            weights, bias = np.ascontiguousarray(coef.T, dtype=np.float32), intercept.astype(np.float32)
        self._weights, self._bias = weights, bias

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (n, L)."""
        return np.asarray(self._features(list(texts)) @ self._weights) + self._bias

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        logits = self.decision_function(texts)
        return expit(logits) if self._space().multi_label else softmax(logits, axis=1)

    @property
    def n_params(self) -> int:
        return 0 if self._weights is None else int(self._weights.size + self._bias.size)

    def save(self, directory: str | Path, *, config: dict | None = None, training_data: dict | None = None, metrics: dict | None = None) -> Path:
        config = {"baseline": asdict(self.config), **(config or {})}
        return super().save(directory, config=config, training_data=training_data or {}, metrics=metrics)

    def _save_weights(self, directory: Path) -> None:
        tensors = {"weights": self._weights, "bias": self._bias}
        vocabularies = {}
        for name, vectorizer in self._vectorizers.items():
            tensors[f"{name}_idf"] = vectorizer.idf_.astype(np.float32)
            terms = np.empty(len(vectorizer.vocabulary_), dtype=object)
            for term, index in vectorizer.vocabulary_.items():
                terms[index] = term
            vocabularies[name] = terms.tolist()
        save_arrays(tensors, directory / WEIGHTS_FILE)
        (directory / VOCABULARY_FILE).write_text(json.dumps(vocabularies, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def _load_weights(cls, directory: Path, manifest: Manifest) -> Self:
        model = cls(BaselineConfig.from_dict(manifest.config.get("baseline", {})))
        path = require_file(directory / VOCABULARY_FILE)
        try:
            vocabularies = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"is not valid JSON ({exc}): it is damaged or cut short.", file=path) from None
        if not (
            isinstance(vocabularies, dict)
            and all(isinstance(vocabularies.get(name), list) and all(isinstance(t, str) for t in vocabularies[name]) for name in model._vectorizers)
        ):
            raise ModelError(f"must map {' and '.join(model._vectorizers)} to lists of terms: it does not belong to this model.", file=path)
        sizes = {name: len(vocabularies[name]) for name in model._vectorizers}
        tensors = load_model_arrays(directory / WEIGHTS_FILE)
        n_labels = len(manifest.labels)
        if n_labels == 2 and not manifest.multi_label and getattr(tensors.get("weights"), "shape", (0, 0))[1:] == (1,):
            n_labels = 1  # saved before two-class baselines kept a column per class (binary coef_)
        check_shapes(
            directory / WEIGHTS_FILE,
            tensors,
            {"weights": (sum(sizes.values()), n_labels), "bias": (n_labels,), **{f"{name}_idf": (size,) for name, size in sizes.items()}},
        )
        for name, vectorizer in model._vectorizers.items():
            vectorizer.vocabulary_ = {term: i for i, term in enumerate(vocabularies[name])}
            if len(vectorizer.vocabulary_) != sizes[name]:
                raise ModelError(f"lists a {name} term twice: it is damaged.", file=path)
            vectorizer.idf_ = tensors[f"{name}_idf"]
        weights, bias = tensors["weights"], tensors["bias"]
        if weights.shape[1] == 1 and len(manifest.label_space) == 2 and not manifest.label_space.multi_label:
            # Saved before two-class models kept both rows: the one column is scikit-learn's own.
            weights, bias = np.hstack([-weights / 2, weights / 2]), np.concatenate([-bias / 2, bias / 2])
        model._weights, model._bias = weights, bias
        return model
