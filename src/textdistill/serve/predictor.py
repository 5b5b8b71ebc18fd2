"""What the model says about a batch of texts, in the form the service answers with."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from textdistill.data.labels import ancestors
from textdistill.models.automation import Automation, Withheld
from textdistill.models.base import TextClassifier
from textdistill.models.out_of_scope import OutOfScope
from textdistill.threads import set_thread_limit


@dataclass(frozen=True)
class Prediction:
    """One message's predicted labels (hierarchy parents first) and every label's confidence;
    with automation thresholds, the predicted labels withheld (the others are ``labels``)."""

    labels: tuple[str, ...]
    scores: dict[str, float]
    withheld: tuple[Withheld, ...] | None = None
    out_of_scope: tuple[bool, float, float] | None = None  # (rejected, score, threshold), with a reject option


class Predictor:
    """Wraps a loaded model: predicted labels with thresholds applied and hierarchy parents
    included, and per-label confidences, never lower for a parent than for its children (single-label:
    their sum; multi-label: at least the highest, see :meth:`LabelSpace.confidences`). With
    ``automation``, a predicted label below its automation threshold is withheld, not returned;
    with ``out_of_scope``, a message above its threshold gets no label."""

    def __init__(self, model: TextClassifier, automation: Automation | None = None, out_of_scope: OutOfScope | None = None) -> None:
        self.model = model
        self.space = model.label_space
        self.automation = automation
        self.out_of_scope = out_of_scope

    def __call__(self, texts: Sequence[str]) -> list[Prediction]:
        rejected = None
        if self.out_of_scope is None:
            proba = np.asarray(self.model.predict_proba(list(texts)))
        else:  # the score needs logits; their softmax is the model's probabilities
            from scipy.special import softmax

            logits = np.asarray(self.model.decision_function(list(texts)), dtype=np.float64)
            proba = softmax(logits, axis=1)
            rejected, oos_scores = self.out_of_scope.reject(logits)
        if proba.shape != (len(texts), len(self.space)):
            raise RuntimeError(f"the model returned scores of shape {proba.shape} for {len(texts)} texts and {len(self.space)} labels")
        if not np.isfinite(proba).all():
            raise RuntimeError("the model returned scores that are not finite numbers")
        label_sets = self.model.predict_label_sets(texts, proba)
        predictions = []
        for i, (labels, row) in enumerate(zip(label_sets, proba)):
            labels, scores = self._with_parents(labels), self.model.label_confidences(row)
            withheld = None
            if self.automation is not None:
                kept, held = self.automation.apply(labels, scores)
                labels, withheld = tuple(label for label in labels if label in kept), tuple(held)
            verdict = None
            if rejected is not None:
                verdict = (bool(rejected[i]), float(oos_scores[i]), self.out_of_scope.threshold)
                if rejected[i]:
                    labels, withheld = (), None if withheld is None else ()
            predictions.append(Prediction(labels, scores, withheld, verdict))
        return predictions

    def _with_parents(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        if self.space.multi_label or not self.space.hierarchical:
            return labels  # multi-label sets already hold their ancestors
        (leaf,) = labels
        return (*ancestors(leaf, self.space.hierarchy_sep), leaf)


def limit_threads(threads: int | None) -> None:
    """Cap the CPU threads of the model's libraries for calls made from this thread (the
    model's worker thread: OpenMP limits are per calling thread). None leaves the defaults."""
    if threads is None:
        return
    threadpool_limits(limits=threads)
    set_thread_limit(threads)  # runtimes with their own pools: ONNX Runtime sessions
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
