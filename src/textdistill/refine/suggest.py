"""What to annotate next: a ranked queue of unannotated messages ("Teach label", "Rebalance").

A strategy scores the pool from the model's probabilities (and, for ``diverse`` and
``rebalance``, message embeddings) and picks ``k`` messages, each with the reason it was chosen:

- ``uncertainty``: single-label, the smallest margin between the two most probable labels;
  multi-label, the label closest to its threshold (distance in logits, so that thresholds of
  0.1 and 0.5 compare fairly);
- ``entropy``: the most spread-out probabilities (multi-label: the summed binary entropy);
- ``diverse``: the ``10 k`` most uncertain messages clustered by k-means into ``k`` groups of
  similar messages, the most uncertain of each group taken, so a batch is not 50 copies of one
  confusion;
- ``label:NAME``: where the model is unsure about that one label (single-label: its
  probability against the strongest other label's; multi-label: against its threshold);
- ``rebalance``: the messages farthest from every annotated message and from those already
  chosen (k-center greedy), the regions the annotated set covers least;
- ``random``: the control.

Near-identical texts (the same words once case, digits and punctuation are set aside, or a
TF-IDF cosine of 0.9 or more with a message already chosen) are chosen once. Probabilities
come from a transfer set of the same model when it holds the pool's messages (no rescoring),
else from the model. Embeddings are a transformer model's pooled encoder features, else a
TF-IDF + LSA projection of the texts.
"""

from __future__ import annotations

import re
import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textdistill.data.messages import DataSpec, MessageSet, read_columns
from textdistill.errors import TextdistillError
from textdistill.models.base import MANIFEST_FILE, TextClassifier, load_model
from textdistill.models.manifest import Manifest

NEAR_DUPLICATE_COSINE = 0.9
DIVERSE_CANDIDATES = 10  # diverse clusters the k * this most uncertain messages
_EPS = 1e-6
NEEDS_EMBEDDINGS = ("diverse", "rebalance")


@dataclass
class Pick:
    """One chosen message: its index in the pool, its strategy score (higher: chosen first) and why."""

    index: int
    score: float
    reason: str
    predicted: tuple[str, ...] = ()  # the model's label set for the message
    confidence: tuple[float, ...] = ()  # and each predicted label's confidence


@dataclass
class Suggestions:
    """The ranked queue, with what it was made from."""

    picks: list[Pick]
    strategy: str
    probabilities: np.ndarray  # (pool size, L), the model's, for every pool message
    labels: list[str]
    multi_label: bool
    thresholds: np.ndarray | None
    reused: int  # pool messages whose probabilities came from the transfer set
    duplicates_skipped: int
    embedding: str | None  # "encoder" or "tfidf-lsa" when the strategy used embeddings


@dataclass
class Scores:
    """What a strategy sees: the pool's probabilities, the labels and their thresholds (0.5
    where the model has none)."""

    proba: np.ndarray
    labels: list[str]
    multi_label: bool
    thresholds: np.ndarray


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def uncertainty(s: Scores) -> tuple[np.ndarray, list[str]]:
    """Higher is less sure, with a reason per message."""
    if s.multi_label:
        distance = np.abs(_logit(s.proba) - _logit(s.thresholds)[None, :])
        nearest = distance.argmin(axis=1)
        reasons = [
            f"{s.labels[j]} at {s.proba[i, j]:.2f}, threshold {s.thresholds[j]:.2f}" for i, j in enumerate(nearest)
        ]
        return -distance.min(axis=1), reasons
    top = np.argsort(-s.proba, axis=1)[:, :2]
    first, second = s.proba[np.arange(len(top)), top[:, 0]], s.proba[np.arange(len(top)), top[:, 1]]
    reasons = [
        f"margin {a - b:.2f}: {s.labels[i]} {a:.2f} vs {s.labels[j]} {b:.2f}"
        for (i, j), a, b in zip(top, first, second)
    ]
    return 1.0 - (first - second), reasons


def entropy(s: Scores) -> tuple[np.ndarray, list[str]]:
    p = np.clip(s.proba, _EPS, 1 - _EPS)
    if s.multi_label:
        value = -(p * np.log2(p) + (1 - p) * np.log2(1 - p)).sum(axis=1)
        return value, [f"summed label entropy {v:.2f} bits" for v in value]
    value = -(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])
    return value, [f"entropy {v:.2f} of the maximum" for v in value]


def label_uncertainty(s: Scores, label: str) -> tuple[np.ndarray, list[str]]:
    if label not in s.labels:
        raise TextdistillError(f"label:{label} names no label of the model; its labels are: {', '.join(s.labels)}")
    j = s.labels.index(label)
    p = s.proba[:, j]
    if s.multi_label:
        return -np.abs(_logit(p) - _logit(s.thresholds[j])), [f"{label} at {v:.2f}, threshold {s.thresholds[j]:.2f}" for v in p]
    others = np.delete(s.proba, j, axis=1)
    rival = others.argmax(axis=1)
    rival_p = others[np.arange(len(p)), rival]
    names = [lab for lab in s.labels if lab != label]
    return -np.abs(p - rival_p), [f"{label} {a:.2f} vs {names[r]} {b:.2f}" for a, r, b in zip(p, rival, rival_p)]


def k_center_greedy(pool: np.ndarray, centers: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    """Pick ``k`` rows of ``pool``, each the farthest (cosine distance) from ``centers`` and the rows
    already picked. small-text's ``greedy_coreset`` does the same; importing small-text loads its
    transformers integration (19 s here), so these ten lines stay."""
    pool = _normalise(pool)
    nearest = np.full(len(pool), 2.0) if len(centers) == 0 else 1.0 - (pool @ _normalise(centers).T).max(axis=1)
    picked, distances = [], []
    for _ in range(min(k, len(pool))):
        i = int(nearest.argmax())
        picked.append(i)
        distances.append(float(nearest[i]))
        nearest = np.minimum(nearest, 1.0 - pool @ pool[i])
        nearest[picked] = -np.inf
    return picked, distances


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class Embedder:
    """Message embeddings on demand: ``pool(indices)`` and ``annotated()``, so that ``diverse``
    embeds only its shortlist of a large pool."""

    pool: Callable[[Sequence[int]], np.ndarray]
    annotated: Callable[[], np.ndarray]


def message_embedder(model: TextClassifier, texts: Sequence[str], annotated_texts: Sequence[str]) -> tuple[Embedder, str]:
    """Embeddings of ``texts`` by index, and of ``annotated_texts``: a transformer's pooled encoder
    features, else TF-IDF reduced by LSA to at most 128 dimensions, fit on both sets of texts."""
    if hasattr(model, "network") and hasattr(model.network, "pool"):
        from textdistill.training.probe import pooled_features

        def encode(rows: Sequence[str]) -> np.ndarray:
            return pooled_features(model, list(rows), "Embedding") if len(rows) else np.zeros((0, 1), np.float32)

        return Embedder(lambda idx: encode([texts[i] for i in idx]), lambda: encode(annotated_texts)), "encoder"
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    fit_texts = [*texts, *annotated_texts]
    matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(fit_texts)
    dims = max(1, min(128, matrix.shape[1] - 1, matrix.shape[0] - 1))
    vectors = TruncatedSVD(dims, random_state=0).fit_transform(matrix).astype(np.float32)
    return Embedder(lambda idx: vectors[list(idx)], lambda: vectors[len(texts) :]), "tfidf-lsa"


STRATEGIES = ("uncertainty", "entropy", "diverse", "label:NAME", "rebalance", "random")  # the module docstring says what each does


def check_strategy(strategy: str) -> None:
    if strategy in STRATEGIES or (strategy.startswith("label:") and len(strategy) > len("label:")):
        return
    raise TextdistillError(f"strategy {strategy!r} is unknown; choose one of: {', '.join(STRATEGIES)}")


def suggest(
    model_dir: str | Path,
    pool: MessageSet,
    *,
    strategy: str = "uncertainty",
    k: int = 50,
    annotated: MessageSet | None = None,
    transfer_dir: str | Path | None = None,
    seed: int = 0,
) -> Suggestions:
    """Rank ``k`` messages of ``pool`` to annotate next with ``strategy`` (module docstring).
    ``annotated``: the messages annotated so far (``rebalance`` needs them; they are also left
    out of the pool by id). ``transfer_dir``: a transfer set of this model whose logits are
    reused for the pool messages it holds."""
    check_strategy(strategy)
    if k < 1:
        raise TextdistillError(f"k must be at least 1 (got {k}).")
    if strategy == "rebalance" and (annotated is None or not len(annotated)):
        raise TextdistillError("strategy 'rebalance' needs the annotated messages: pass --train ANNOTATED.")
    model = load_model(model_dir)
    space = model.label_space
    known = set(annotated.ids) if annotated is not None else set()
    candidates = [i for i, message_id in enumerate(pool.ids) if message_id not in known]
    proba, reused = _pool_probabilities(model, Path(model_dir), pool, transfer_dir)
    thresholds = model.thresholds if model.thresholds is not None else np.full(len(space), 0.5)
    scores = Scores(proba, list(space.labels), space.multi_label, np.asarray(thresholds, dtype=np.float64))
    embedder, embedding = (None, None)
    if strategy in NEEDS_EMBEDDINGS:
        embedder, embedding = message_embedder(model, pool.texts, annotated.texts if annotated is not None else [])
    picks, skipped = rank_messages(strategy, scores, pool.texts, candidates, k, embedder=embedder, seed=seed)
    predicted = model.predict_label_sets([pool.texts[p.index] for p in picks], proba=proba[[p.index for p in picks]])
    for pick, labels in zip(picks, predicted):
        confidences = model.label_confidences(proba[pick.index])
        pick.predicted, pick.confidence = labels, tuple(confidences[label] for label in labels)
    return Suggestions(picks, strategy, proba, scores.labels, scores.multi_label, model.thresholds, reused, skipped, embedding)


def rank_messages(
    strategy: str,
    scores: Scores,
    texts: Sequence[str],
    candidates: Sequence[int],
    k: int,
    *,
    embedder: Embedder | None = None,
    seed: int = 0,
) -> tuple[list[Pick], int]:
    """The ``k`` messages of ``candidates`` (indices into ``texts`` and ``scores``) that ``strategy``
    prefers, best first, near-duplicates skipped (their count is returned too). ``diverse`` and
    ``rebalance`` need ``embedder``."""
    order, reasons, values = _order(strategy, scores, np.asarray(candidates, dtype=int), k, embedder, seed)
    return _without_near_duplicates(texts, order, values, reasons, k)


def _order(strategy, scores, candidates, k, embedder, seed):
    """Candidate indices in the order the strategy prefers them, with each message's reason and score."""
    n = len(scores.proba)
    values = np.zeros(n)
    reasons = [""] * n

    def ranked(v: np.ndarray) -> np.ndarray:
        return candidates[np.argsort(-v[candidates], kind="stable")]

    if strategy == "random":
        order = np.random.default_rng(seed).permutation(candidates)
        values[order] = -np.arange(len(order), dtype=float)
        return list(order), ["random sample"] * n, values
    if strategy in ("uncertainty", "entropy") or strategy.startswith("label:"):
        if strategy.startswith("label:"):
            values, reasons = label_uncertainty(scores, strategy.removeprefix("label:"))
        else:
            values, reasons = (uncertainty if strategy == "uncertainty" else entropy)(scores)
        return list(ranked(values)), reasons, values
    if strategy == "rebalance":
        picked, distances = k_center_greedy(embedder.pool(candidates), embedder.annotated(), 2 * k)
        order = candidates[picked]
        values[order] = distances
        for i, d in zip(order, distances):
            reasons[i] = f"cosine distance {d:.2f} to the nearest annotated or chosen message"
        return list(order), reasons, values
    # diverse
    from sklearn.cluster import KMeans

    values, reasons = uncertainty(scores)
    shortlist = ranked(values)[: DIVERSE_CANDIDATES * k]
    n_clusters = min(k, len(shortlist))
    clusters = KMeans(n_clusters, n_init=3, random_state=seed).fit_predict(_normalise(embedder.pool(shortlist)))
    sizes = np.bincount(clusters, minlength=n_clusters)
    first_of_cluster: dict[int, int] = {}
    for position, cluster in enumerate(clusters):  # the shortlist is most uncertain first
        first_of_cluster.setdefault(int(cluster), position)
    leaders = sorted(first_of_cluster.values())
    chosen = set(leaders)
    for position in leaders:
        i = shortlist[position]
        reasons[i] = f"most uncertain of a cluster of {sizes[clusters[position]]}: {reasons[i]}"
    return [int(shortlist[p]) for p in leaders + [p for p in range(len(shortlist)) if p not in chosen]], reasons, values


def _duplicate_key(text: str) -> str:
    return " ".join(re.findall(r"[^\W\d_]+", text.lower()))


def _without_near_duplicates(texts, order, values, reasons, k) -> tuple[list[Pick], int]:
    """The first ``k`` of ``order`` that are not near-identical to one taken before them."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    window = [int(i) for i in order[: 4 * k + 50]]  # enough to refill k after duplicates
    vectors = TfidfVectorizer(sublinear_tf=True).fit_transform([texts[i] for i in window]) if window else None
    seen: set[str] = set()
    taken: list[int] = []
    skipped = 0
    for position, i in enumerate(window):
        if len(taken) == k:
            break
        key = _duplicate_key(texts[i])
        if key in seen or (taken and (vectors[taken] @ vectors[position].T).max() >= NEAR_DUPLICATE_COSINE):
            skipped += 1
            continue
        seen.add(key)
        taken.append(position)
    return [Pick(window[p], float(values[window[p]]), reasons[window[p]]) for p in taken], skipped


def own_transfer_set(model_dir: Path, transfer_dir: str | Path, what_to_do: str):
    """The transfer set in ``transfer_dir``, refused unless the model in ``model_dir`` labelled it
    (same directory, same save): another model's logits are not this model's probabilities."""
    from textdistill.transfer.store import TransferSet

    transfer = TransferSet.load(transfer_dir)
    teacher = transfer.manifest["teacher"]
    own = Manifest.read(Path(model_dir) / MANIFEST_FILE)
    if Path(teacher["dir"]) != Path(model_dir).resolve() or teacher["created"] != own.created:
        raise TextdistillError(
            f"the transfer set {transfer_dir} was labelled by {teacher['dir']}, not by {model_dir}: its logits are another model's. {what_to_do}"
        )
    return transfer


def _pool_probabilities(model: TextClassifier, model_dir: Path, pool: MessageSet, transfer_dir) -> tuple[np.ndarray, int]:
    """The model's probabilities for every pool message: from the transfer set where it holds the
    message (same id and text) and was labelled by this model, from the model for the rest."""
    from scipy.special import expit, softmax

    logits, reused = pool_logits(model, model_dir, pool, transfer_dir)
    return (expit(logits) if model.label_space.multi_label else softmax(logits, axis=1)), reused


def pool_logits(model: TextClassifier, model_dir: Path, pool: MessageSet, transfer_dir) -> tuple[np.ndarray, int]:
    """The model's logits for every pool message, reused from a transfer set as
    :func:`_pool_probabilities` reuses them; and how many were reused."""
    logits = np.zeros((len(pool.texts), len(model.label_space)))
    missing = list(range(len(pool.texts)))
    if transfer_dir is not None:
        from textdistill.transfer.score import ORIGINAL

        transfer = own_transfer_set(model_dir, transfer_dir, "Leave out --transfer to score the pool with this model.")
        stored = {
            (i, t): row
            for i, t, o, row in zip(transfer.ids, transfer.texts, transfer.origins, transfer.logits)
            if o == ORIGINAL
        }
        found = [(i, stored.get((pool.ids[i], pool.texts[i]))) for i in missing]
        rows = [i for i, row in found if row is not None]
        if rows:
            logits[rows] = np.stack([row for _, row in found if row is not None])
        missing = [i for i, row in found if row is None]
    if missing:
        logits[missing] = model.decision_function([pool.texts[i] for i in missing])
    return logits, len(pool.texts) - len(missing)


QUEUE_FLAG = "annotated"


def write_queue(suggestions: Suggestions, pool: MessageSet, path: str | Path, spec: DataSpec) -> Path:
    """Write the queue as a CSV that goes back into ``--train`` once annotated.

    Columns: the id column (``spec.id_column`` or ``id``), the pool's text columns as they were,
    the label column the model was trained on (``label``, or ``labels`` for multi-label; empty, for
    the annotator), ``annotated`` (``false``: set it to ``true`` on the rows you annotate), then
    ``rank``, ``predicted`` (the model's labels), ``confidence`` (their probabilities),
    ``reason`` and ``strategy``. Read it back with ``--id-column ID --annotated-column annotated``.
    """
    path = Path(path)
    # the text columns as the file has them; the text as read when the pool is several files
    raw = (read_columns(pool, spec.text_columns, spec.encoding) if Path(pool.source).is_file() else None) or {spec.text_columns[0]: list(pool.texts)}
    id_column = spec.id_column or "id"
    label_column = spec.labels_column if suggestions.multi_label else spec.label_column
    header = [id_column, *raw, label_column, QUEUE_FLAG, "rank", "predicted", "confidence", "reason", "strategy"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for rank, pick in enumerate(suggestions.picks, 1):
            writer.writerow(
                [
                    pool.ids[pick.index],
                    *(column[pick.index] for column in raw.values()),
                    "",
                    "false",
                    rank,
                    spec.label_sep.join(pick.predicted),
                    spec.label_sep.join(f"{c:.3f}" for c in pick.confidence),
                    pick.reason,
                    suggestions.strategy,
                ]
            )
    return path
