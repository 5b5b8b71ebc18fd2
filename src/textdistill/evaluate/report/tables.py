"""Report content as plain-text tables and sentences, shared by the Markdown and HTML renderers.

Cells hold unescaped text; each renderer escapes it for its own format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textdistill.evaluate.report.pareto import dominators, number, point

DASH = "—"
MARKDOWN_LABELS = 15
TOP_CONFUSIONS = 10
BEST_NOTE = "Best value of each column in bold. Accuracy is — for multi-label models."
ALL_ON_FRONT = "Every model is on the Pareto front: none is both slower and less accurate than another."
NO_LABELS = "No per-label scores recorded."
NO_CONFUSIONS = "No confusions recorded."


def fmt_score(value: object) -> str:
    """A score in [0, 1] as 0.000."""
    v = number(value)
    return DASH if v is None else f"{v:.3f}"


def fmt_ms(value: object) -> str:
    """Milliseconds with three significant digits (whole numbers from 100 up)."""
    v = number(value)
    if v is None:
        return DASH
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:#.3g}".rstrip(".")


def fmt_count(value: object) -> str:
    """A count or rate as an integer with thousands separators."""
    v = number(value)
    return DASH if v is None else f"{v:,.0f}"


def fmt_mb(value: object) -> str:
    """Megabytes with one decimal."""
    v = number(value)
    return DASH if v is None else f"{v:,.1f}"


@dataclass(frozen=True)
class Table:
    """A table of text cells; ``numeric`` columns are right-aligned, ``bold`` holds (row, column) pairs."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    bold: frozenset[tuple[int, int]] = frozenset()


_Column = tuple[str, str, Callable[[object], str], Callable[..., float]]
_SUMMARY: tuple[_Column, ...] = (
    ("accuracy", "accuracy", fmt_score, max),
    ("micro-F1", "micro_f1", fmt_score, max),
    ("macro-F1", "macro_f1", fmt_score, max),
    ("ms/message (p50)", "latency_ms_p50", fmt_ms, min),
    ("p95 ms", "latency_ms_p95", fmt_ms, min),
    ("messages/s", "throughput_per_s", fmt_count, max),
    ("peak MB", "peak_rss_mb", fmt_mb, min),
    ("size MB", "size_mb", fmt_mb, min),
    ("parameters", "n_params", fmt_count, min),
)


def summary_table(evaluations: list[dict]) -> Table:
    """One row per model, in the order given; the best shown value of each column is bold.

    A column is left plain when fewer than two distinct values are shown in it.
    """
    rows = tuple((ev["name"], *(fmt(ev.get(key)) for _, key, fmt, _ in _SUMMARY)) for ev in evaluations)
    bold: set[tuple[int, int]] = set()
    for column, (_, key, fmt, best) in enumerate(_SUMMARY, start=1):
        values = [v for ev in evaluations if (v := number(ev.get(key))) is not None]
        if len({fmt(v) for v in values}) > 1:
            shown = fmt(best(values))
            bold |= {(r, column) for r, row in enumerate(rows) if row[column] == shown}
    header = ("model", *(title for title, *_ in _SUMMARY))
    return Table(header, rows, (False, *[True] * len(_SUMMARY)), frozenset(bold))


def level_table(evaluations: list[dict]) -> Table | None:
    """Scores per hierarchy level (level, then model order), or None when no model is hierarchical."""
    entries = sorted(
        ((level.get("level", 0), i, level) for i, ev in enumerate(evaluations) for level in ev.get("by_level") or []),
        key=lambda entry: entry[:2],
    )
    if not entries:
        return None
    rows = tuple(
        (str(lv), evaluations[i]["name"], *(fmt_score(level.get(key)) for key in ("accuracy", "micro_f1", "macro_f1")))
        for lv, i, level in entries
    )
    return Table(("level", "model", "accuracy", "micro-F1", "macro-F1"), rows, (True, False, True, True, True))


POSITIVE_CLASS_NOTE = (
    "Two-class models: precision, recall, F1 and average precision of the positive class "
    "(set with evaluate --positive-label; by default the rarer class of the test data)."
)


def positive_class_table(evaluations: list[dict]) -> Table | None:
    """The positive class's scores of each two-class model, or None when the report has none
    (evaluations written before the positive class was recorded have none)."""
    rows = tuple(
        (
            ev["name"],
            str(positive.get("label", "")),
            str(positive.get("chosen") or DASH),
            fmt_score(positive.get("precision")),
            fmt_score(positive.get("recall")),
            fmt_score(positive.get("f1")),
            fmt_score(positive.get("average_precision")),
            fmt_count(positive.get("support")),
        )
        for ev in evaluations
        if isinstance(positive := ev.get("positive_class"), dict)
    )
    if not rows:
        return None
    header = ("model", "positive class", "chosen as", "precision", "recall", "F1", "AP", "support")
    return Table(header, rows, (False, False, False, *[True] * 5))


EARLY_EXIT_NOTE = (
    "A message leaves at the first layer whose prediction uncertainty (normalised entropy) is below the "
    "threshold; threshold 0 runs every layer. ms/msg is batched prediction time per message. "
    "The model's own threshold in bold."
)


def early_exit_table(evaluation: dict) -> Table | None:
    """An early-exit model's quality, mean layers used and speed per exit threshold, or None."""
    early = evaluation.get("early_exit") or {}
    curve = early.get("curve") or []
    if not curve:
        return None
    multi_label = bool(evaluation.get("multi_label"))
    rows = tuple(
        (
            DASH if (threshold := number(p.get("threshold"))) is None else f"{threshold:g}",
            fmt_score(p.get("micro_f1" if multi_label else "accuracy")),
            DASH if (layers := number(p.get("mean_layers"))) is None else f"{layers:.2f}",
            fmt_ms(p.get("ms_per_message")),
        )
        for p in curve
    )
    own = number(early.get("threshold"))
    bold = frozenset((r, c) for r, p in enumerate(curve) if own is not None and number(p.get("threshold")) == own for c in range(4))
    header = ("threshold", "micro-F1" if multi_label else "accuracy", "mean layers", "ms/msg")
    return Table(header, rows, (True,) * 4, bold)


def early_exit_heading(evaluation: dict) -> str:
    """The model's name with the device and thread count its early-exit curve was timed on."""
    early = evaluation.get("early_exit") or {}
    parts = [str(early["device"])] if early.get("device") else []
    if number(early.get("threads")):
        parts.append(f"{fmt_count(early['threads'])} thread(s)")
    return f"{evaluation['name']} ({', '.join(parts)})" if parts else evaluation["name"]


def weakest_labels(evaluation: dict) -> list[dict]:
    """Per-label scores, lowest F1 first (ties: lowest support first); labels without an F1 last."""

    def key(row: dict) -> tuple[bool, float, float]:
        f1 = number(row.get("f1"))
        return f1 is None, f1 or 0.0, number(row.get("support")) or 0.0

    return sorted(evaluation.get("per_label") or [], key=key)


def label_table(labels: list[dict]) -> Table:
    """Per-label precision, recall, F1, support and average precision, in the order given."""
    rows = tuple(
        (
            str(row.get("label", "")),
            fmt_score(row.get("precision")),
            fmt_score(row.get("recall")),
            fmt_score(row.get("f1")),
            fmt_count(row.get("support")),
            fmt_score(row.get("average_precision")),
        )
        for row in labels
    )
    return Table(("label", "precision", "recall", "F1", "support", "AP"), rows, (False, *[True] * 5))


def confusion_table(evaluation: dict) -> Table | None:
    """The most frequently confused (true, predicted) label pairs, or None when there are none."""
    pairs = sorted(evaluation.get("confused_pairs") or [], key=lambda p: -(number(p.get("count")) or 0))
    if not pairs:
        return None
    rows = tuple(
        (str(p.get("true", "")), str(p.get("predicted", "")), fmt_count(p.get("count"))) for p in pairs[:TOP_CONFUSIONS]
    )
    return Table(("true", "predicted", "count"), rows, (False, False, True))


def dominance_sentences(evaluations: list[dict]) -> list[str]:
    """One sentence per model off the Pareto front naming the front models that dominate it, and how."""

    def describe(i: int) -> str:
        ev = evaluations[i]
        return f"{ev['name']} (macro-F1 {fmt_score(ev['macro_f1'])} at {fmt_ms(ev['latency_ms_p50'])} ms/message)"

    def how(j: int, i: int) -> str:
        (fast, good), (slow, bad) = point(evaluations[j]), point(evaluations[i])
        return f"{'faster' if fast < slow else 'as fast'} and {'more' if good > bad else 'as'} accurate"

    return [
        f"{describe(i)} is dominated by " + ", and by ".join(f"{describe(j)}, which is {how(j, i)}" for j in by) + "."
        for i, by in dominators(evaluations).items()
        if by
    ]


INT8_INSTRUCTION_SETS = ("avx512_vnni", "avx_vnni", "amx_int8")
COMPRESSION_NOTE = (
    "Each compressed model against the model it was exported from, on the same test data: the change in "
    "quality, and how many times faster (batch-1 p50) and smaller on disk it is. int8 speed depends on the "
    "CPU's integer dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX)."
)


def _reference(evaluation: dict, evaluations: list[dict]) -> dict | None:
    """The evaluation of the model a compressed model came from: the source itself, else an fp32
    export of the same source."""
    source = (evaluation.get("compression") or {}).get("source")
    if not source:
        return None
    resolved = str(Path(source).resolve())
    candidates = [ev for ev in evaluations if ev is not evaluation and ev.get("model_dir") and str(Path(ev["model_dir"]).resolve()) == resolved]
    candidates += [
        ev for ev in evaluations
        if ev is not evaluation and (ev.get("compression") or {}).get("source") == source and ev["compression"].get("precision") == "fp32"
    ]  # fmt: skip
    return candidates[0] if candidates else None


def _ratio(numerator: object, denominator: object) -> str:
    a, b = number(numerator), number(denominator)
    return DASH if a is None or b is None or b <= 0 else f"{a / b:.2f}x"


def _change(value: object, reference: object) -> str:
    a, b = number(value), number(reference)
    return DASH if a is None or b is None else f"{100 * (a - b):+.2f} pts"


def compression_table(evaluations: list[dict]) -> Table | None:
    """Compressed models against their source model, or None when the report has none."""
    rows = []
    for ev in evaluations:
        compression = ev.get("compression")
        if not compression:
            continue
        reference = _reference(ev, evaluations)
        quality = "micro_f1" if ev.get("multi_label") else "accuracy"
        int8_sets = [s for s in (ev.get("machine") or {}).get("instruction_sets") or [] if s in INT8_INSTRUCTION_SETS]
        ref = reference or {}
        rows.append(
            (
                ev["name"],
                str(compression.get("precision") or DASH),
                ref.get("name", f"{compression.get('source_kind', '?')} model not in this report"),
                _change(ev.get(quality), ref.get(quality)),
                _change(ev.get("macro_f1"), ref.get("macro_f1")),
                _ratio(ref.get("latency_ms_p50"), ev.get("latency_ms_p50")),
                _ratio(ref.get("size_mb"), ev.get("size_mb")),
                ", ".join(int8_sets) or "none (no VNNI or AMX)",
            )
        )
    if not rows:
        return None
    header = ("model", "precision", "compared with", "Δ accuracy / micro-F1", "Δ macro-F1", "faster", "smaller", "int8 instructions")
    return Table(header, tuple(rows), (False, False, False, True, True, True, True, False))


def unplotted(evaluations: list[dict]) -> list[str]:
    """Names of models left out of the plot for lack of a macro-F1 or a positive latency."""
    return [ev["name"] for ev in evaluations if point(ev) is None]


def data_table(evaluations: list[dict]) -> Table:
    """Test data, message and skipped-row counts, and the threshold mode of multi-label models."""

    def thresholds(ev: dict) -> str:
        if not ev.get("multi_label"):
            return "n/a (single-label)"
        return str((ev.get("thresholds") or {}).get("mode") or "none recorded")

    rows = tuple(
        (
            ev["name"],
            str(ev.get("data") or DASH),
            fmt_count(ev.get("n_messages")),
            fmt_count(ev.get("skipped_rows")),
            thresholds(ev),
        )
        for ev in evaluations
    )
    header = ("model", "data", "test messages", "skipped rows", "thresholds")
    return Table(header, rows, (False, False, True, True, False))


def data_warnings(evaluations: list[dict]) -> list[str]:
    """Warnings about skipped rows and about models scored on different test data."""
    warnings = [
        f"{ev['name']}: {fmt_count(skipped)} row(s) of {ev.get('data') or 'the test data'} were skipped; "
        f"its scores cover only the {fmt_count(ev.get('n_messages'))} messages evaluated."
        for ev in evaluations
        if (skipped := number(ev.get("skipped_rows"))) is not None and skipped > 0
    ]
    if len({(ev.get("data"), ev.get("n_messages")) for ev in evaluations}) > 1:
        warnings.append("The models were not all evaluated on the same test data: their scores are not comparable.")
    return warnings


def machine_table(evaluations: list[dict]) -> Table:
    """CPU, cores, instruction sets and threads each model was measured with."""
    rows = []
    for ev in evaluations:
        machine = ev.get("machine") or {}
        rows.append(
            (
                ev["name"],
                str(machine.get("cpu") or DASH),
                fmt_count(machine.get("cores")),
                ", ".join(map(str, machine.get("instruction_sets") or [])) or DASH,
                fmt_count(ev.get("threads")),
            )
        )
    header = ("model", "cpu", "cores", "instruction sets", "threads")
    return Table(header, tuple(rows), (False, False, True, False, True))


def versions_table(evaluations: list[dict]) -> Table | None:
    """Package versions (rows) per model (columns), or None when no versions were recorded."""
    versions = [ev.get("versions") or {} for ev in evaluations]
    packages = list(dict.fromkeys(package for v in versions for package in v))
    if not packages:
        return None
    rows = tuple((package, *(str(v.get(package) or DASH) for v in versions)) for package in packages)
    header = ("package", *(ev["name"] for ev in evaluations))
    return Table(header, rows, (False,) * len(header))
