"""Has the traffic changed since training? Reference messages against current ones.

The reference is a transfer set of the model (its original messages; their logits are reused,
not scored again) or a messages file; the current messages are scored by the model. Three
measures, each with a plain verdict:

1. **Label shift**: per label, the share of messages the model predicts it for (single-label:
   the most probable label; multi-label: every label at its decision threshold), reference
   against current, by Fisher's exact test with Holm's correction over the labels. A label *rose*
   or *fell* when its corrected p-value is below the measure's level and it moved by at least
   ``min_change`` (2 points) or by ``min_relative_change`` (half) of its reference share: at
   10,000 messages a common label's 0.3-point move is significant and means nothing, while a
   1.3 % label that vanishes matters. Single-label data also gets a chi-square test of the whole
   distribution, reported beside it (multi-label has none: a message counts for several labels).
2. **Coverage**: the share of messages with a confident prediction (:func:`confident`), by
   Fisher's exact test; it fires when it moved by at least ``min_change`` too.
3. **Embeddings** (those of :func:`~textdistill.refine.suggest.message_embedder`: a
   transformer's pooled features, else TF-IDF + LSA), two tests at half the measure's level each.
   A domain classifier (logistic regression) learns on half of the embedded messages to tell
   current from reference ones; its AUROC on the other half is 0.5 when it cannot, and the
   p-value is Mann-Whitney's test of those held-out scores (the AUROC is its statistic), exact
   because one model that never saw them gave them all (pooled out-of-fold scores of 5-fold
   cross-validation, tried first, come from five models: 2 false alarms in 23 random halves of
   BANKING77 test at a nominal 0.8 %). A text on both sides stays in one half. It fires at
   AUROC ``MIN_AUROC`` (0.525) or more: when a share f of the current messages is of a new kind
   and the rest is as before, even a perfect classifier reaches only 0.5 + f / 2, so this asks
   for about 5 % of new messages. Beside it, the squared maximum mean discrepancy (Gretton et
   al. 2012; RBF kernel on the cosine-normalised embeddings, the median squared distance as its
   width), tested against ``PERMUTATIONS`` (300) random relabellings of the messages. At most
   ``max_embedded`` (2,000) messages of each side are embedded, drawn at random, so that both
   run in seconds.

The label shift is what names a changed mix of the known kinds of messages; messages of another
domain show in the coverage and the domain classifier (benchmarks/RESULTS-drift.md).

The verdict is *drift* when any measure fires. Each is tested at ``alpha / 3`` (Bonferroni), so
that traffic like the reference is called drift at most ``alpha`` (5 %) of the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.data.messages import MessageSet
from textdistill.errors import TextdistillError
from textdistill.models.base import TextClassifier, load_model

ALPHA = 0.05
MEASURES = 3  # label shift, coverage, embeddings: each is tested at ALPHA / MEASURES
MIN_CHANGE = 0.02
MIN_RELATIVE_CHANGE = 0.5
MIN_AUROC = 0.525  # a share f of new messages gives at most 0.5 + f / 2: this asks for about 5 % or more
MAX_EMBEDDED = 2000
PERMUTATIONS = 300  # the smallest p-value is 1/301, below the embeddings' tests' level of 0.05 / 3 / 2
CONFIDENT_PROBABILITY = 0.5
MIN_MESSAGES = 20  # per side: fewer cannot show a shift, and the domain classifier's halves need them


@dataclass
class Traffic:
    """One side of the comparison: its texts, the model's probabilities for them, where they came from."""

    texts: list[str]
    proba: np.ndarray
    source: str
    reused: int = 0  # messages whose probabilities came from a transfer set, not the model
    logits: np.ndarray | None = None  # what the reject option scores (single-label models)


@dataclass
class LabelChange:
    label: str
    reference_count: int
    current_count: int
    reference_share: float
    current_share: float
    change: float
    p_value: float  # Holm-corrected over the labels
    direction: str | None  # "rose", "fell", or None when it did neither


@dataclass
class LabelShift:
    labels: list[LabelChange]
    overall: dict[str, float] | None  # single-label: the chi-square test of the label counts
    fired: bool

    def moved(self, direction: str) -> list[LabelChange]:
        return sorted((c for c in self.labels if c.direction == direction), key=lambda c: -abs(c.change))


@dataclass
class CoverageChange:
    rule: str  # what counts as a confident prediction
    reference: float
    current: float
    change: float
    p_value: float
    fired: bool


@dataclass
class EmbeddingShift:
    embedding: str  # "encoder" or "tfidf-lsa"
    auroc: float  # the domain classifier's, on the held-out half
    auroc_p_value: float
    mmd: float  # squared maximum mean discrepancy
    mmd_p_value: float  # by permutation
    n_reference: int  # messages embedded
    n_current: int
    classifier_fired: bool
    mmd_fired: bool

    @property
    def fired(self) -> bool:
        return self.classifier_fired or self.mmd_fired


@dataclass
class Drift:
    verdict: str  # "drift" or "no drift"
    reasons: list[str]  # the measures that fired, in words
    reference: str
    current: str
    n_reference: int
    n_current: int
    reused: int  # reference messages whose probabilities came from the transfer set
    multi_label: bool
    label_shift: LabelShift
    coverage: CoverageChange
    embeddings: EmbeddingShift
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["embeddings"]["fired"] = self.embeddings.fired
        return data


def measure_drift(
    model_dir: str | Path,
    current: MessageSet,
    *,
    reference: MessageSet | None = None,
    transfer_dir: str | Path | None = None,
    alpha: float = ALPHA,
    min_change: float = MIN_CHANGE,
    min_relative_change: float = MIN_RELATIVE_CHANGE,
    max_embedded: int = MAX_EMBEDDED,
    seed: int = 0,
) -> Drift:
    """Compare ``current`` messages with the reference: ``reference`` messages, or the original
    messages of the transfer set in ``transfer_dir`` (this model's; its logits are reused)."""
    if (reference is None) == (transfer_dir is None):
        raise TextdistillError("give the reference as messages or as a transfer set, one of them.")
    if not 0 < alpha < 1:
        raise TextdistillError(f"--alpha is {alpha}: a significance level is between 0 and 1 (0.05: 5 % false alarms).")
    if min_change < 0 or min_relative_change < 0:
        raise TextdistillError("--min-change and --min-relative-change are shares of messages: 0 or more (0.02: 2 points).")
    if max_embedded < MIN_MESSAGES:
        raise TextdistillError(f"--max-embedded is {max_embedded}: embed at least {MIN_MESSAGES} messages of each side.")
    _require_enough("current", current)
    if reference is not None:
        _require_enough("reference", reference)  # before either side is scored
    model_dir = Path(model_dir)
    model = load_model(model_dir)
    before = reference_from_transfer(model, model_dir, transfer_dir) if transfer_dir is not None else scored(model, reference.texts, reference.source)
    _require_enough("reference", before)
    after = scored(model, current.texts, current.source)
    level = alpha / MEASURES
    labels = label_shift(model, before.proba, after.proba, level, min_change, min_relative_change)
    reference_confident, rule = confident(model, model_dir, before.proba, before.logits)
    current_confident, _ = confident(model, model_dir, after.proba, after.logits)
    coverage = coverage_change(reference_confident, current_confident, rule, level, min_change)
    embeddings = embedding_shift(model, before.texts, after.texts, level, max_embedded, seed)
    reasons = _reasons(labels, coverage, embeddings)
    settings = {
        "alpha": alpha,
        "level_per_measure": level,
        "min_change": min_change,
        "min_relative_change": min_relative_change,
        "min_auroc": MIN_AUROC,
        "max_embedded": max_embedded,
        "seed": seed,
    }
    return Drift(
        "drift" if reasons else "no drift", reasons, before.source, after.source, len(before.texts), len(after.texts), before.reused,
        model.label_space.multi_label, labels, coverage, embeddings, settings,
    )  # fmt: skip


def _require_enough(side: str, messages: MessageSet | Traffic) -> None:
    if len(messages.texts) < MIN_MESSAGES:
        raise TextdistillError(
            f"the {side} messages ({messages.source}) are {len(messages.texts)}; drift needs at least {MIN_MESSAGES} on each side to show anything."
        )


def scored(model: TextClassifier, texts: Sequence[str], source: str) -> Traffic:
    """Messages scored by the model."""
    from textdistill.evaluate.evaluation import decision_function_batched
    from textdistill.predict import probabilities_from_logits

    logits = np.asarray(decision_function_batched(model, list(texts), f"Scoring {Path(source).name}"), dtype=np.float64)
    return Traffic(list(texts), probabilities_from_logits(logits, model.manifest), source, logits=logits)


def reference_from_transfer(model: TextClassifier, model_dir: Path, transfer_dir: str | Path) -> Traffic:
    """The transfer set's original messages (augmented copies are not traffic) with the
    probabilities of their stored logits; refused when another model labelled it."""
    from scipy.special import expit, softmax

    from textdistill.refine.suggest import own_transfer_set
    from textdistill.transfer.score import ORIGINAL

    transfer = own_transfer_set(model_dir, transfer_dir, "Give --reference a transfer set this model labelled, or a messages file.")
    rows = [i for i, origin in enumerate(transfer.origins) if origin == ORIGINAL]
    logits = transfer.logits[rows].astype(np.float64)
    proba = expit(logits) if transfer.multi_label else softmax(logits, axis=1)
    return Traffic([transfer.texts[i] for i in rows], proba, str(transfer_dir), reused=len(rows), logits=logits)


def predicted_indicators(model: TextClassifier, proba: np.ndarray) -> np.ndarray:
    """(n, L) booleans: which labels the model predicts for each message."""
    space = model.label_space
    if not space.multi_label:
        return np.eye(len(space), dtype=bool)[proba.argmax(axis=1)]
    return space.encode(space.predict(proba, model.thresholds)).astype(bool)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down correction: family-wise error at most the level, uniformly better than Bonferroni."""
    p_values = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p_values)
    m = len(p_values)
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p_values[order]))
    corrected = np.empty(m)
    corrected[order] = stepped
    return corrected


def _fisher(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    from scipy.stats import fisher_exact

    return float(fisher_exact([[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]]).pvalue)


def label_shift(model: TextClassifier, reference: np.ndarray, current: np.ndarray, level: float, min_change: float, min_relative_change: float) -> LabelShift:
    """Per-label shares of the model's predictions on both sides, tested (module docstring)."""
    before, after = predicted_indicators(model, reference).sum(axis=0), predicted_indicators(model, current).sum(axis=0)
    n_before, n_after = len(reference), len(current)
    tested = np.flatnonzero(before + after)  # a label neither side predicts has nothing to test
    p_values = np.ones(len(before))
    p_values[tested] = holm(np.array([_fisher(int(after[j]), n_after, int(before[j]), n_before) for j in tested]))
    changes = []
    for j, label in enumerate(model.label_space.labels):
        share_before, share_after = before[j] / n_before, after[j] / n_after
        change = share_after - share_before
        relevant = abs(change) >= min_change or abs(change) >= min_relative_change * share_before
        direction = ("rose" if change > 0 else "fell") if p_values[j] < level and relevant else None
        changes.append(LabelChange(label, int(before[j]), int(after[j]), float(share_before), float(share_after), float(change), float(p_values[j]), direction))
    overall = None
    if not model.label_space.multi_label and len(tested) >= 2:
        from scipy.stats import chi2_contingency

        test = chi2_contingency(np.vstack([before[tested], after[tested]]))
        overall = {"test": "chi-square", "statistic": float(test.statistic), "dof": int(test.dof), "p_value": float(test.pvalue)}
    return LabelShift(changes, overall, any(c.direction for c in changes))


def confident(model: TextClassifier, model_dir: Path, proba: np.ndarray, logits: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """Which messages get a confident prediction, and the rule in words: with automation
    thresholds (``textdistill automate``), at least one label automated; without, a top
    probability of at least 0.5 (multi-label: a label at its decision threshold). With a reject
    option (``textdistill reject``), a message it rejects as out of scope is never confident."""
    from textdistill.models.out_of_scope import OUT_OF_SCOPE_FILE, read_out_of_scope

    out_of_scope = read_out_of_scope(model_dir, model.manifest)
    covered, rule = _confident(model, model_dir, proba)
    if out_of_scope is None or logits is None:
        return covered, rule
    rejected, _ = out_of_scope.reject(logits)
    return covered & ~rejected, f"{rule}, and not out of scope ({OUT_OF_SCOPE_FILE}, {out_of_scope.score} score)"


def _confident(model: TextClassifier, model_dir: Path, proba: np.ndarray) -> tuple[np.ndarray, str]:
    from textdistill.models.automation import AUTOMATION_FILE, automate_batch, read_automation

    space = model.label_space
    automation = read_automation(model_dir, model.manifest)
    if automation is not None:
        decided = automate_batch(automation, space, proba, space.predict(proba, model.thresholds))
        rule = f"at least one label at or above its automation threshold ({AUTOMATION_FILE}, target precision {automation.target_precision:g})"
        return np.array([bool(kept) for kept, _ in decided]), rule
    without = "; the model has no automation thresholds (textdistill automate chooses them)"
    if space.multi_label:
        return predicted_indicators(model, proba).any(axis=1), "at least one label at or above its decision threshold" + without
    return proba.max(axis=1) >= CONFIDENT_PROBABILITY, f"top probability at least {CONFIDENT_PROBABILITY:g}" + without


def coverage_change(reference: np.ndarray, current: np.ndarray, rule: str, level: float, min_change: float) -> CoverageChange:
    before, after = float(reference.mean()), float(current.mean())
    p_value = _fisher(int(current.sum()), len(current), int(reference.sum()), len(reference))
    return CoverageChange(rule, before, after, after - before, p_value, p_value < level and abs(after - before) >= min_change)


def embedding_shift(model: TextClassifier, reference: Sequence[str], current: Sequence[str], level: float, max_embedded: int, seed: int) -> EmbeddingShift:
    """The domain classifier's held-out AUROC and the MMD, each with its p-value (module docstring)."""
    from scipy.stats import mannwhitneyu
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from textdistill.refine.suggest import message_embedder

    rng = np.random.default_rng(seed)
    picked = [sorted(rng.choice(len(texts), min(max_embedded, len(texts)), replace=False)) for texts in (reference, current)]
    before, after = [reference[i] for i in picked[0]], [current[i] for i in picked[1]]
    embedder, embedding = message_embedder(model, before, after)
    x = np.vstack([embedder.pool(range(len(before))), embedder.annotated()])
    y = np.r_[np.zeros(len(before)), np.ones(len(after))]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
    # a text on both sides stays on one side of the split: trained on its reference copy, the
    # classifier would call its current copy reference where the sets overlap
    texts = {text: i for i, text in enumerate(dict.fromkeys([*before, *after]))}
    groups = [texts[text] for text in (*before, *after)]
    fit, held_out = next(StratifiedGroupKFold(2, shuffle=True, random_state=seed).split(x, y, groups))
    scores, truth = classifier.fit(x[fit], y[fit]).decision_function(x[held_out]), y[held_out]
    auroc = float(roc_auc_score(truth, scores))
    auroc_p = float(mannwhitneyu(scores[truth == 1], scores[truth == 0], alternative="greater").pvalue)
    mmd, mmd_p = mmd_permutation_test(x[: len(before)], x[len(before) :], PERMUTATIONS, seed)
    half = level / 2
    return EmbeddingShift(embedding, auroc, auroc_p, mmd, mmd_p, len(before), len(after), auroc_p < half and auroc >= MIN_AUROC, mmd_p < half)


def mmd_permutation_test(x: np.ndarray, y: np.ndarray, permutations: int, seed: int) -> tuple[float, float]:
    """The squared MMD of ``x`` and ``y`` (rows: embeddings) and its permutation p-value: the
    share of random relabellings of the rows as x or y that give as large an MMD."""
    z = np.vstack([x, y]).astype(np.float32)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    distances = np.maximum(2 - 2 * (z @ z.T), 0)
    width = float(np.median(distances[np.triu_indices(len(z), 1)]))
    kernel = np.exp(-distances / max(width, 1e-12))
    side = np.r_[np.ones(len(x), dtype=bool), np.zeros(len(y), dtype=bool)]
    rng = np.random.default_rng(seed)
    labellings = np.column_stack([side, *(rng.permutation(side) for _ in range(permutations))])
    # MMD^2 = w' K w with w = 1/n on x's rows and -1/m on y's: all labellings in one product
    weights = np.where(labellings, 1 / len(x), -1 / len(y)).astype(np.float32)
    values = np.einsum("ij,ij->j", weights, kernel @ weights)
    return float(values[0]), float((1 + (values[1:] >= values[0]).sum()) / (permutations + 1))


def format_p(p_value: float) -> str:
    """A p-value for people: two significant digits, and below 1e-16 (doubles lose it there) just that."""
    return "p < 1e-16" if p_value < 1e-16 else f"p = {p_value:.2g}"


def _reasons(labels: LabelShift, coverage: CoverageChange, embeddings: EmbeddingShift) -> list[str]:
    def named(changes: list[LabelChange]) -> str:
        return ", ".join(f"{c.label} ({100 * c.change:+.1f} points)" for c in changes)

    reasons = []
    if labels.fired:
        moved = [f"{direction}: {named(labels.moved(direction))}" for direction in ("rose", "fell") if labels.moved(direction)]
        reasons.append("predicted labels " + "; ".join(moved))
    if coverage.fired:
        reasons.append(
            f"coverage {'rose' if coverage.change > 0 else 'fell'} from {coverage.reference:.1%} to {coverage.current:.1%} "
            f"({100 * coverage.change:+.1f} points, {format_p(coverage.p_value)})"
        )
    if embeddings.classifier_fired:
        reasons.append(f"a classifier tells current from reference messages apart: AUROC {embeddings.auroc:.3f} ({format_p(embeddings.auroc_p_value)})")
    if embeddings.mmd_fired:
        reasons.append(f"the messages' embeddings are distributed differently: MMD² {embeddings.mmd:.2g} (permutation {format_p(embeddings.mmd_p_value)})")
    return reasons
