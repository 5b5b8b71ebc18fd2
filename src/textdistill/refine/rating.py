"""Model rating: is the model good enough to automate, and is its annotated data representative?

Five factors, each measured, scored 0-100 and given a status (good / ok / poor) and what to do:

============================  ======================================  ===========  =========
factor                        score                                   good         ok
============================  ======================================  ===========  =========
mean average precision        100 x the mean AP over labels           >= 0.80      >= 0.60
worst labels                  100 x the mean AP of the worst 10 %     >= 0.70      >= 0.50
                              of labels (at least one)
coverage                      100 x the share of pool messages        >= 90 %      >= 70 %
                              covered (:func:`covered`)
balance                       100 x (1 - 2 (AUROC - 0.5)), clipped    AUROC <=     <= 0.75
                              to 0-100                                0.65
labels with too few examples  100 x the share of labels with at       none short   <= 10 % of
                              least 5 annotated messages                           labels
============================  ======================================  ===========  =========

The rating is the plain mean of the factor scores that could be measured (a factor without its
data says so and what to pass), rounded: good from 80 when no factor is poor, ok from 60, else
poor. The factors are those of Communications Mining's Model Rating (balance, coverage, all
labels, underperforming labels: the 10 % of labels with the most warnings;
docs.uipath.com/ixp/automation-cloud/latest/cm-user-guide/model-rating); its formula is not
published, so the scores and bounds here are textdistill's own. The coverage bounds (< 70 %
poor, >= 90 % good) follow the figures commonly quoted for it; the others were chosen so that
a model one would switch on is good and one needing work is not.

Coverage: a pool message is covered when at least one label is automated for it (at or above
its threshold in ``automation.json``, :meth:`Automation.apply`); without automation thresholds,
when a predicted label's confidence is at least 0.5 (the output says which).

Balance: a logistic regression on message embeddings (the teacher's pooled encoder features,
else TF-IDF + LSA: :func:`~textdistill.refine.suggest.message_embedder`) tells annotated from
unannotated messages; its cross-validated AUROC is 0.5 when the annotated messages look like
the pool, near 1 when they come from part of it. Each set is subsampled to at most 2,000 messages
and the classes weighted, so set sizes do not decide. K-means clusters of both sets (as many as
the model has labels, at least 20) then show where: a cluster is under-covered when its share of
the annotated messages is below half its share of the pool; ``textdistill suggest --strategy rebalance`` picks messages from such regions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.data.labels import LabelSpace, ancestors
from textdistill.data.messages import MessageSet
from textdistill.errors import DataError
from textdistill.models.automation import Automation, automated_labels, predicted_with_ancestors, read_automation
from textdistill.models.base import TextClassifier, load_model

GOOD, OK, POOR, NOT_MEASURED = "good", "ok", "poor", "not measured"
MEAN_AP_GOOD, MEAN_AP_OK = 0.80, 0.60
WORST_AP_GOOD, WORST_AP_OK = 0.70, 0.50
WORST_SHARE = 0.10  # the worst labels factor looks at this share of the labels, at least one
COVERAGE_GOOD, COVERAGE_OK = 0.90, 0.70
BALANCE_GOOD, BALANCE_OK = 0.65, 0.75  # cross-validated AUROC at most
FEW_EXAMPLES_OK = 0.10  # share of labels short of MIN_EXAMPLES that is still ok
MIN_EXAMPLES = 5
RATING_GOOD, RATING_OK = 80, 60
FALLBACK_CONFIDENCE = 0.5  # coverage without automation thresholds
BALANCE_SAMPLE = 2000  # messages of each set the balance classifier sees at most
BALANCE_FOLDS = 5
MIN_BALANCE_MESSAGES = 10  # of each set, for a cross-validated AUROC
N_CLUSTERS = 20
UNDER_COVERED = 0.5  # annotated share below this times the pool share
EXAMPLES_PER_CLUSTER = 3
EXAMPLE_CHARS = 120
SHOWN_LABELS = 5


def covered(space: LabelSpace, automation: Automation | None, predicted: Sequence[str], proba_row: np.ndarray) -> tuple[str, ...]:
    """The labels that cover one message (empty: not covered). With automation thresholds, the
    labels :meth:`Automation.apply` keeps; without, the predicted labels (ancestors included)
    whose confidence is at least :data:`FALLBACK_CONFIDENCE`."""
    labels = predicted_with_ancestors(space, predicted)
    confidences = space.confidences(proba_row)
    if automation is not None:
        return automation.apply(labels, confidences)[0]
    return tuple(label for label in labels if confidences[label] >= FALLBACK_CONFIDENCE)


def coverage(
    space: LabelSpace, proba: np.ndarray, predicted: Sequence[Sequence[str]], automation: Automation | None, rejected: np.ndarray | None = None
) -> dict[str, Any]:
    """Share of messages covered, overall and per label (the share covered as that label, next to
    the share predicted as it at any confidence). ``rejected``: the messages a reject option
    (``textdistill reject``) calls out of scope, never covered."""
    sets = [() if rejected is not None and rejected[i] else covered(space, automation, labels, row) for i, (labels, row) in enumerate(zip(predicted, np.asarray(proba)))]
    n = len(sets)
    by_label = Counter(label for labels in sets for label in labels)
    predicted_as = Counter(label for labels in predicted for label in predicted_with_ancestors(space, labels))
    if automation is not None:
        rule = f"a label at or above its automation threshold (automation.json, target precision {automation.target_precision:g})"
    else:
        rule = f"a predicted label with confidence >= {FALLBACK_CONFIDENCE:g} (the model has no automation.json: run textdistill automate for thresholds)"
    if rejected is not None:
        rule += f", and not rejected as out of scope (out_of_scope.json: {int(np.sum(rejected)):,} messages)"
    return {
        "share": sum(map(bool, sets)) / n if n else None,
        "n_covered": sum(map(bool, sets)),
        "n_messages": n,
        "by": "automation" if automation is not None else "confidence",
        "rule": rule,
        "per_label": [
            {"label": label, "covered": by_label[label], "share": by_label[label] / n if n else None, "predicted": predicted_as[label]}
            for label in automated_labels(space)
        ],
    }


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def balance_auroc(pool_vectors: np.ndarray, annotated_vectors: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Cross-validated AUROC (mean and standard deviation over folds) of a class-weighted logistic
    regression telling annotated (positive) from pool messages by their embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _normalise(np.vstack([pool_vectors, annotated_vectors]))
    y = np.r_[np.zeros(len(pool_vectors)), np.ones(len(annotated_vectors))]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    scores = cross_val_score(classifier, x, y, scoring="roc_auc", cv=StratifiedKFold(BALANCE_FOLDS, shuffle=True, random_state=seed))
    return float(scores.mean()), float(scores.std())


def pool_clusters(
    pool_vectors: np.ndarray, annotated_vectors: np.ndarray, texts: Sequence[str], predicted: Sequence[Sequence[str]], seed: int = 0, n_labels: int = 0
) -> list[dict[str, Any]]:
    """K-means clusters of all messages (pool and annotated, so that a region only the pool has
    gets clusters of its own; ``max(N_CLUSTERS, n_labels)`` of them, at most a tenth of the
    messages): per cluster its share of the pool and of the annotated messages,
    whether it is under-covered, the label the model predicts most for its pool messages, and the
    pool messages nearest its centre; most under-covered first, clusters without pool messages
    left out."""
    from sklearn.cluster import KMeans

    pool_x, annotated_x = _normalise(pool_vectors), _normalise(annotated_vectors)
    k = max(2, min(max(N_CLUSTERS, n_labels), (len(pool_x) + len(annotated_x)) // 10))
    kmeans = KMeans(k, n_init=3, random_state=seed).fit(np.vstack([pool_x, annotated_x]))
    pool_of, annotated_of = kmeans.labels_[: len(pool_x)], kmeans.labels_[len(pool_x) :]
    distance = kmeans.transform(pool_x)
    clusters = []
    for c in range(k):
        members = np.flatnonzero(pool_of == c)
        if not len(members):
            continue
        pool_share, annotated_share = len(members) / len(pool_x), float((annotated_of == c).mean())
        labels = Counter(label for i in members for label in predicted[i])
        top, count = labels.most_common(1)[0] if labels else (None, 0)
        nearest = members[np.argsort(distance[members, c])[:EXAMPLES_PER_CLUSTER]]
        clusters.append(
            {
                "pool_share": pool_share,
                "annotated_share": annotated_share,
                "under_covered": annotated_share < UNDER_COVERED * pool_share,
                "predicted_mostly": top,
                "predicted_mostly_share": count / len(members),
                "examples": [_shorten(texts[i]) for i in nearest],
            }
        )
    return sorted(clusters, key=lambda c: c["annotated_share"] - c["pool_share"])


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def _most_specific(space: LabelSpace, labels: Sequence[str]) -> tuple[str, ...]:
    """A label set without the labels that are an ancestor of another of its labels."""
    implied = {parent for label in labels for parent in ancestors(label, space.hierarchy_sep)}
    return tuple(label for label in labels if label not in implied)


def balance(model: TextClassifier, pool_texts: Sequence[str], pool_predicted: Sequence[Sequence[str]], annotated_texts: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """The balance classifier's AUROC and the pool's clusters, on at most :data:`BALANCE_SAMPLE`
    messages of each set; ``measured`` is False (with why) when either set is too small."""
    from textdistill.refine.suggest import message_embedder

    space = model.label_space
    if min(len(pool_texts), len(annotated_texts)) < MIN_BALANCE_MESSAGES:
        why = f"{len(annotated_texts)} annotated and {len(pool_texts)} pool messages; at least {MIN_BALANCE_MESSAGES} of each are needed"
        return {"measured": False, "why_not": why}
    rng = np.random.default_rng(seed)
    pool_rows = np.sort(rng.permutation(len(pool_texts))[:BALANCE_SAMPLE])
    annotated_rows = np.sort(rng.permutation(len(annotated_texts))[:BALANCE_SAMPLE])
    sample = [pool_texts[i] for i in pool_rows]
    embedder, embedding = message_embedder(model, sample, [annotated_texts[i] for i in annotated_rows])
    pool_vectors, annotated_vectors = embedder.pool(range(len(sample))), embedder.annotated()
    auroc, spread = balance_auroc(pool_vectors, annotated_vectors, seed)
    clusters = pool_clusters(pool_vectors, annotated_vectors, sample, [_most_specific(space, pool_predicted[i]) for i in pool_rows], seed, len(space.labels))
    return {
        "measured": True,
        "auroc": auroc,
        "auroc_std": spread,
        "embedding": embedding,
        "n_pool": len(pool_rows),
        "n_annotated": len(annotated_rows),
        "clusters": clusters,
        "n_under_covered": sum(c["under_covered"] for c in clusters),
    }


def annotated_counts(space: LabelSpace, label_sets: Sequence[Sequence[str]]) -> dict[str, int]:
    """Annotated messages per label of the model (a child's count towards its ancestors too)."""
    counts = Counter(label for labels in label_sets for label in predicted_with_ancestors(space, labels))
    return {label: counts[label] for label in space.labels}


def _status(value: float, good: float, ok: float, higher_is_better: bool = True) -> str:
    if not higher_is_better:
        value, good, ok = -value, -good, -ok
    return GOOD if value >= good else OK if value >= ok else POOR


def _factor(key: str, name: str, value: Any, display: str, score: float | None, status: str, detail: str, advice: str | None) -> dict[str, Any]:
    return {
        "key": key, "name": name, "value": value, "display": display,
        "score": None if score is None else round(float(np.clip(score, 0, 100)), 1), "status": status, "detail": detail, "advice": advice,
    }  # fmt: skip


def _not_measured(key: str, name: str, why: str, advice: str) -> dict[str, Any]:
    return _factor(key, name, None, "-", None, NOT_MEASURED, why, advice)


def _listing(labels: Sequence[str], shown: int = SHOWN_LABELS) -> str:
    return ", ".join(labels[:shown]) + (f" and {len(labels) - shown} more" if len(labels) > shown else "")


def quality_factors(per_label_ap: Mapping[str, float | None] | None, source: str | None) -> list[dict[str, Any]]:
    """The mean AP and worst labels factors from each label's average precision (None: no
    examples of it in the data measured on)."""
    names = ("mean_ap", "Mean average precision"), ("worst_labels", "Worst labels")
    measured = {label: ap for label, ap in (per_label_ap or {}).items() if ap is not None}
    if not measured:
        why = "no annotated validation or test messages to measure average precision on"
        return [_not_measured(key, name, why, "pass --validation FILE (annotated messages the model was not trained on)") for key, name in names]
    mean = float(np.mean(list(measured.values())))
    status = _status(mean, MEAN_AP_GOOD, MEAN_AP_OK)
    worst = sorted(measured, key=lambda label: measured[label])[: max(1, int(np.ceil(WORST_SHARE * len(measured))))]
    worst_mean = float(np.mean([measured[label] for label in worst]))
    worst_status = _status(worst_mean, WORST_AP_GOOD, WORST_AP_OK)
    shown = ", ".join(f"{label} ({measured[label]:.2f})" for label in worst[:SHOWN_LABELS])
    unmeasured = [label for label, ap in (per_label_ap or {}).items() if ap is None]
    detail = f"over {len(measured)} labels on {source}" + (f"; {len(unmeasured)} without examples there: {_listing(unmeasured)}" if unmeasured else "")
    return [
        _factor("mean_ap", "Mean average precision", mean, f"{mean:.3f}", 100 * mean, status, detail,
                None if status == GOOD else f"annotate more messages of the weakest labels ({_listing(worst)}) and check their annotations: textdistill check"),
        _factor("worst_labels", "Worst labels", worst_mean, f"{worst_mean:.3f}", 100 * worst_mean, worst_status,
                f"mean AP of the worst {len(worst)} of {len(measured)} labels: {shown}",
                None if worst_status == GOOD else f"annotate more messages of {_listing(worst)} (textdistill suggest --strategy label:{worst[0]}), or merge labels the model confuses"),
    ]  # fmt: skip


def coverage_factor(block: dict[str, Any]) -> dict[str, Any]:
    share = block["share"]
    status = _status(share, COVERAGE_GOOD, COVERAGE_OK)
    detail = f"{block['n_covered']:,} of {block['n_messages']:,} pool messages get {block['rule']}"
    advice = None
    if status != GOOD:
        advice = "annotate more messages like the uncovered ones (textdistill suggest --strategy uncertainty)"
        advice += ", or lower --target-precision of textdistill automate" if block["by"] == "automation" else "; run textdistill automate to measure coverage at a target precision"
    return _factor("coverage", "Coverage", share, f"{share:.1%}", 100 * share, status, detail, advice)


def balance_factor(block: dict[str, Any] | None) -> dict[str, Any]:
    if block is None:
        return _not_measured("balance", "Balance", "no annotated messages given", "pass --train FILE (the annotated messages)")
    if not block["measured"]:
        return _not_measured("balance", "Balance", block["why_not"], "annotate more messages, or give a larger pool")
    auroc = block["auroc"]
    status = _status(auroc, BALANCE_GOOD, BALANCE_OK, higher_is_better=False)
    under = [c for c in block["clusters"] if c["under_covered"]]
    detail = (
        f"AUROC {auroc:.3f} ± {block['auroc_std']:.3f} telling {block['n_annotated']:,} annotated from {block['n_pool']:,} pool messages "
        f"({block['embedding']} embeddings; 0.5: balanced); {len(under)} of {len(block['clusters'])} pool clusters under-covered"
    )
    advice = None
    if status != GOOD or under:
        regions = "; ".join(f"like {c['examples'][0]!r}" for c in under[:3])
        advice = "run textdistill suggest MODEL --pool POOL --train TRAIN --strategy rebalance and annotate the queue" + (f" (it targets messages {regions})" if regions else "")
    return _factor("balance", "Balance", auroc, f"AUROC {auroc:.3f}", 100 * (1 - 2 * (auroc - 0.5)), status, detail, advice)


def few_examples_factor(counts: dict[str, int] | None) -> dict[str, Any]:
    name = "Labels with too few examples"
    if counts is None:
        return _not_measured("few_examples", name, "no annotated messages given", "pass --train FILE (the annotated messages)")
    short = sorted((label for label, n in counts.items() if n < MIN_EXAMPLES), key=lambda label: (counts[label], label))
    share = len(short) / len(counts)
    status = GOOD if not short else OK if share <= FEW_EXAMPLES_OK else POOR
    detail = f"{len(short)} of {len(counts)} labels have fewer than {MIN_EXAMPLES} annotated messages" + (
        ": " + ", ".join(f"{label} ({counts[label]})" for label in short[:SHOWN_LABELS]) + ("…" if len(short) > SHOWN_LABELS else "") if short else ""
    )
    advice = f"annotate at least {MIN_EXAMPLES} messages of {_listing(short)} (textdistill suggest --strategy label:{short[0]})" if short else None
    return _factor("few_examples", name, len(short), str(len(short)), 100 * (1 - share), status, detail, advice)


def combine(factors: list[dict[str, Any]]) -> tuple[int | None, str]:
    """The rating (the rounded mean of the measured factor scores) and its status."""
    scores = [f["score"] for f in factors if f["score"] is not None]
    if not scores:
        return None, NOT_MEASURED
    score = int(round(float(np.mean(scores))))
    if score >= RATING_GOOD and all(f["status"] != POOR for f in factors):
        return score, GOOD
    return score, OK if score >= RATING_OK else POOR


HOW = (
    f"the mean of the measured factor scores (0-100); good from {RATING_GOOD} when no factor is poor, ok from {RATING_OK}. "
    "Factor scores: 100 x mean AP; 100 x mean AP of the worst 10 % of labels; 100 x coverage; 100 x (1 - 2 (AUROC - 0.5)) for balance; "
    f"100 x the share of labels with at least {MIN_EXAMPLES} annotated messages."
)


def rate_model(
    model: TextClassifier,
    model_dir: str | Path,
    pool: MessageSet,
    *,
    annotated: MessageSet | None = None,
    per_label_ap: Mapping[str, float | None] | None = None,
    ap_source: str | None = None,
    transfer_dir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The rating of ``model`` (saved in ``model_dir``) on the unannotated ``pool``: coverage,
    balance against the ``annotated`` messages (their ids are left out of the pool), per-label
    average precision ``per_label_ap`` measured on ``ap_source`` (else the validation APs saved
    in automation.json), labels with few annotated messages; the pool's probabilities are
    reused from a transfer set of this model where it holds them."""
    from scipy.special import expit, softmax

    from textdistill.models.out_of_scope import read_out_of_scope
    from textdistill.refine.suggest import pool_logits

    model_dir = Path(model_dir)
    space = model.label_space
    automation = read_automation(model_dir, model.manifest)
    known = set(annotated.ids) if annotated is not None else set()
    left = pool.subset([i for i, message_id in enumerate(pool.ids) if message_id not in known])
    if not len(left):
        raise _empty_pool(pool)
    logits, reused = pool_logits(model, model_dir, left, transfer_dir)
    proba = expit(logits) if space.multi_label else softmax(logits, axis=1)
    predicted = model.predict_label_sets(left.texts, proba)
    out_of_scope = read_out_of_scope(model_dir, model.manifest)
    coverage_block = coverage(space, proba, predicted, automation, None if out_of_scope is None else out_of_scope.reject(logits)[0])
    balance_block = balance(model, left.texts, predicted, annotated.texts, seed) if annotated is not None else None
    counts = annotated_counts(space, annotated.labels) if annotated is not None else None
    if per_label_ap is None and automation is not None:
        per_label_ap = {entry.label: entry.average_precision for entry in automation.labels if entry.label in space}
        ap_source = f"the validation data of automation.json ({automation.validation.get('source') or 'validation'})"
    factors = [
        *quality_factors(per_label_ap, ap_source),
        coverage_factor(coverage_block),
        balance_factor(balance_block),
        few_examples_factor(counts),
    ]
    score, status = combine(factors)
    warnings = [f"coverage is low (under {COVERAGE_OK:.0%}): {f['detail']}" for f in factors if f["key"] == "coverage" and f["status"] == POOR]
    return {
        "score": score,
        "status": status,
        "how": HOW,
        "factors": factors,
        "coverage": coverage_block,
        "balance": balance_block,
        "annotated_per_label": counts,
        "pool": {"source": pool.source, "n_messages": len(pool), "n_rated": len(left), "n_annotated_left_out": len(pool) - len(left), "reused_from_transfer": reused},
        "warnings": warnings,
    }


def _empty_pool(pool: MessageSet) -> DataError:
    detail = f"all {len(pool)} of its message ids are among the annotated messages" if len(pool) else "it holds no messages"
    return DataError(f"no unannotated messages to rate the model on: {detail}", file=pool.source, hint="pass as --pool the messages the model will see, not those it was trained on")


def rate(
    model_dir: str | Path,
    pool: MessageSet,
    *,
    annotated: MessageSet | None = None,
    validation: MessageSet | None = None,
    transfer_dir: str | Path | None = None,
    skip_bad_rows: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`rate_model` for the model saved in ``model_dir``, average precision measured on the
    annotated ``validation`` messages when given."""
    from textdistill.evaluate.evaluation import drop_unknown_labels, predict_proba_batched
    from textdistill.evaluate.metrics import per_label_metrics

    model = load_model(model_dir)
    per_label_ap, source = None, None
    if validation is not None:
        validation = drop_unknown_labels(validation.annotated(), model, skip_bad_rows)
        space = model.label_space
        proba = predict_proba_batched(model, validation.texts, "Measuring average precision")
        y_true, y_pred = space.encode(validation.labels), space.encode(model.predict_label_sets(validation.texts, proba))
        per_label_ap = {row["label"]: row["average_precision"] for row in per_label_metrics(space, y_true, y_pred, proba)}
        source = f"{validation.source} ({len(validation):,} messages)"
    return rate_model(model, model_dir, pool, annotated=annotated, per_label_ap=per_label_ap, ap_source=source, transfer_dir=transfer_dir, seed=seed)
