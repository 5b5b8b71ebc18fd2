"""Linear probe: a logistic regression on the frozen encoder's pooled features.

It is the ``head`` tuning method on its own, and the warm start of every other method.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from textdistill.data.labels import LabelSpace
from textdistill.models.baseline import softmax_weights
from textdistill.models.resolve import default_cache_dir
from textdistill.progress import track

PROBE_C_GRID = (0.1, 1.0, 10.0, 100.0)


@torch.inference_mode()
def pooled_features(model, texts: Sequence[str], description: str = "Encoding") -> np.ndarray:
    """What the head reads of each message (n, head input): mean-pooled encoder features, a long
    message's windows pooled into one; dropout off, length-sorted batches."""
    network = model.network
    network.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    size = model.config.predict_batch_size
    features = None
    for start in track(range(0, len(texts), size), description):
        rows = order[start : start + size]
        batch = model.encode_batch([texts[i] for i in rows])
        pooled = network.pool(**batch).float().cpu().numpy()
        if features is None:
            features = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
        features[rows] = pooled
    return features


def pretrained_features(model, source: str, texts: Sequence[str], description: str) -> np.ndarray:
    """``pooled_features`` of the pretrained encoder, cached on disk.

    Every tuning method starts out computing exactly the pretrained encoder's function
    (adapters and LoRA start at zero), so trying several methods on the same messages encodes
    them once. The key covers the weights' identity (path, size, time), how long messages are
    read (head+tail or windows) and the texts.
    """
    weights = sorted(Path(source).glob("*.safetensors")) if Path(source).is_dir() else []
    key = hashlib.sha256(
        json.dumps(
            {
                "source": source,
                "weights": [(str(w), w.stat().st_size, w.stat().st_mtime_ns) for w in weights],
                "reading": model.config.long_message_settings(),
            }
        ).encode()
    )
    for text in texts:
        key.update(text.encode("utf-8", "surrogatepass") + b"\0")
    path = default_cache_dir() / "features" / f"{key.hexdigest()}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    features = pooled_features(model, texts, description)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, features, allow_pickle=False)
    tmp.replace(path)
    return features


def fit_head(space: LabelSpace, x: np.ndarray, y: np.ndarray, C: float) -> tuple[np.ndarray, np.ndarray]:
    """(weights (L, hidden), bias (L,)) of a logistic regression on ``x``."""
    if not space.multi_label:
        return softmax_weights(LogisticRegression(C=C, max_iter=2000).fit(x, y))
    weights = np.zeros((y.shape[1], x.shape[1]))
    bias = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        if y[:, j].min() == y[:, j].max():
            bias[j] = 10.0 if y[0, j] else -10.0  # a label always (or never) present
            continue
        clf = LogisticRegression(C=C, max_iter=2000).fit(x, y[:, j])
        weights[j], bias[j] = clf.coef_[0], clf.intercept_[0]
    return weights, bias


def _targets(space: LabelSpace, label_sets: Sequence[Sequence[str]]) -> np.ndarray:
    return space.encode(label_sets) if space.multi_label else space.encode_single(label_sets)


def _score(space: LabelSpace, weights: np.ndarray, bias: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy (single-label) or micro-F1 at 0.5 (multi-label) of a head on features."""
    logits = x @ weights.T + bias
    if not space.multi_label:
        return float((logits.argmax(1) == y).mean())
    pred = logits > 0
    tp = (pred & (y == 1)).sum()
    return float(2 * tp / max(pred.sum() + y.sum(), 1))


def fit_linear_probe(
    model,
    texts: Sequence[str],
    label_sets: Sequence[Sequence[str]],
    validation: tuple[Sequence[str], Sequence[Sequence[str]]] | None,
    C: float | None = None,
    source: str | None = None,
) -> dict:
    """Fit the model's head on frozen features; choose C on validation when not given.

    With ``source`` (the resolved pretrained model the encoder was built from, not yet
    trained) the features are cached on disk for the next run on the same messages.

    Returns the chosen C and its validation score.
    """
    space = model.label_space
    def encode(part: Sequence[str], description: str) -> np.ndarray:
        if source is None:
            return pooled_features(model, part, description)
        return pretrained_features(model, source, part, description)

    x, y = encode(texts, "Linear probe: encoding train"), _targets(space, label_sets)
    grid = (C,) if C is not None else PROBE_C_GRID
    best = None
    if validation is not None and len(grid) > 1:
        x_val, y_val = encode(validation[0], "Linear probe: encoding validation"), _targets(space, validation[1])
        for candidate in grid:
            weights, bias = fit_head(space, x, y, candidate)
            score = _score(space, weights, bias, x_val, y_val)
            if best is None or score > best[0]:
                best = (score, candidate, weights, bias)
    else:
        chosen = grid[0] if C is not None else 1.0
        best = (None, chosen, *fit_head(space, x, y, chosen))
    score, chosen, weights, bias = best
    head = model.network.head
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weights, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))
    return {"probe_C": chosen, "probe_validation_score": score}
