"""Report content as plain-text tables and sentences, shared by the Markdown and HTML renderers.

Cells hold unescaped text; each renderer escapes it for its own format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textdistill.evaluate.report.analysis import Analysis, interval_text, role_text
from textdistill.evaluate.report.pareto import FASTER, dominators, number

DASH = "—"
MARKDOWN_LABELS = 15
TOP_CONFUSIONS = 10
ALL_ON_FRONT = "Every model is on the Pareto front: none is both slower and less accurate (outside the noise) than another."
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
_COST: tuple[_Column, ...] = (
    ("ms/message (p50)", "latency_ms_p50", fmt_ms, min),
    ("p95 ms", "latency_ms_p95", fmt_ms, min),
    ("messages/s", "throughput_per_s", fmt_count, max),
    ("peak MB", "peak_rss_mb", fmt_mb, min),
    ("size MB", "size_mb", fmt_mb, min),
    ("parameters", "n_params", fmt_count, min),
)
BEST_NOTE = (
    "Rows: baseline, teacher, then each student followed by its compressed copies. Best value of each column in bold. "
    "The interval is a 95 % bootstrap interval over the test messages ({resamples:,} resamples); "
    "Δ vs baseline is marked (noise) when the paired interval of the difference includes 0."
)
COMPRESSED_NOTE = (
    "Compressed copies: the parameter count is the source model's (quantisation changes how weights are stored, "
    "not how many there are); size is the ONNX graph on disk, with int8 weights (one byte instead of four) where "
    "quantised, and for a static student the vector table folded with its head (one number per label instead of one "
    "per dimension), which is why it can be far smaller than its parameter count suggests."
)


def _quality_columns(analysis: Analysis) -> tuple[_Column, ...]:
    """The headline metric's own columns come first; accuracy too for two-class data (where the
    headline is the positive class's F1), never for multi-label data; then macro-F1."""
    accuracy = (("accuracy", "accuracy", fmt_score, max),) if analysis.metric == "positive_f1" else ()
    return (*accuracy, ("macro-F1", "macro_f1", fmt_score, max))


def summary_table(analysis: Analysis) -> Table:
    """One row per model in report order: role, the headline metric with its interval, % of the
    teacher's, the change against the baseline, the other quality and cost numbers."""
    evaluations, values = analysis.evaluations, analysis.values
    columns = (*_quality_columns(analysis), *_COST)
    rows = []
    for i, ev in enumerate(evaluations):
        interval = analysis.noise.interval(i)
        rows.append(
            (
                ev["name"],
                role_text(ev),
                fmt_score(values[i]),
                DASH if interval is None else f"{interval[0]:.3f}–{interval[1]:.3f}",
                _share_of_teacher(analysis, i),
                _versus_baseline(analysis, i),
                *(fmt(ev.get(key)) for _, key, fmt, _ in columns),
            )
        )
    bold: set[tuple[int, int]] = set()
    scored = [(2, values, fmt_score, max)] + [(c, [ev.get(key) for ev in evaluations], fmt, best) for c, (_, key, fmt, best) in enumerate(columns, start=6)]
    for column, cells, fmt, best in scored:
        present = [v for cell in cells if (v := number(cell)) is not None]
        if len({fmt(v) for v in present}) > 1:
            shown = fmt(best(present))
            bold |= {(r, column) for r, row in enumerate(rows) if row[column] == shown}
    header = ("model", "role", analysis.title, "95 % interval", "% of teacher", "Δ vs baseline (pts)", *(title for title, *_ in columns))
    return Table(header, tuple(rows), (False, False, True, True, True, True, *[True] * len(columns)), frozenset(bold))


def _share_of_teacher(analysis: Analysis, i: int) -> str:
    teacher = analysis.teacher
    value, reference = analysis.values[i], None if teacher is None else analysis.values[teacher]
    return DASH if value is None or not reference else f"{100 * value / reference:.1f} %"


def _versus_baseline(analysis: Analysis, i: int) -> str:
    if analysis.baseline is None or i == analysis.baseline or (difference := analysis.difference(i, analysis.baseline)) is None:
        return DASH
    text = f"{100 * difference.value:+.1f}"
    return f"{text} (noise)" if difference.assessed and difference.sign == 0 else text


def summary_box(analysis: Analysis) -> list[tuple[str, str]]:
    """(heading, text) lines for the box at the top: data, teacher, students, verdict."""
    evaluations = analysis.evaluations
    first = evaluations[0]
    labels = len(first.get("per_label") or [])
    kind = "multi-label" if first.get("multi_label") else "two-class" if analysis.metric == "positive_f1" else "single-label"
    data = f"{fmt_count(first.get('n_messages'))} test messages ({first.get('data') or 'test data'})"
    if (train := number(first.get("train_messages"))) is not None:
        data = f"{fmt_count(train)} training messages, " + data
    data += f"; {labels:,} labels, {kind}"
    if isinstance(positive := first.get("positive_class"), dict):
        data += f", positive class {positive.get('label')!s} ({positive.get('chosen') or 'chosen'})"
    lines = [("Data", data + ".")]
    if analysis.teacher is not None:
        teacher = evaluations[analysis.teacher]
        lines.append(("Teacher", f"{teacher['name']}: {teacher.get('description') or teacher.get('kind') or 'model'}."))
    if analysis.baseline is not None:
        baseline = evaluations[analysis.baseline]
        lines.append(("Baseline", f"{baseline['name']}: {baseline.get('description') or 'TF-IDF + linear classifier'}."))
    students = [
        f"{ev['name']} ({ev['description']})" if ev.get("description") else ev["name"]
        for ev in evaluations
        if ev["role"] in ("student", "compressed")
    ]
    if students:
        lines.append(("Students", ", ".join(students) + "."))
    lines.append(("Headline metric", f"{analysis.title}: " + _HEADLINE_WHY[analysis.metric]))
    if verdict := analysis.verdict():
        lines.append(("Verdict", verdict[0].upper() + verdict[1:]))
    return lines


_HEADLINE_WHY = {
    "accuracy": "the share of test messages given their label.",
    "micro_f1": "F1 over every (message, label) decision, for multi-label data.",
    "positive_f1": "F1 of the positive class, for two-class data (accuracy rewards always answering the common class).",
}


def level_table(evaluations: list[dict]) -> Table | None:
    """Scores per hierarchy level (level, then model order), or None when no model is hierarchical."""
    entries = sorted(
        ((level.get("level", 0), i, level) for i, ev in enumerate(evaluations) for level in ev.get("by_level") or []),
        key=lambda entry: entry[:2],
    )
    if not entries:
        return None
    # multi-label levels have no accuracy: no column of dashes
    keys = [key for key in ("accuracy", "micro_f1", "macro_f1") if key != "accuracy" or any(number(level.get(key)) is not None for *_, level in entries)]
    rows = tuple((str(lv), evaluations[i]["name"], *(fmt_score(level.get(key)) for key in keys)) for lv, i, level in entries)
    titles = {"accuracy": "accuracy", "micro_f1": "micro-F1", "macro_f1": "macro-F1"}
    return Table(("level", "model", *(titles[key] for key in keys)), rows, (True, False, *[True] * len(keys)))


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


AUTOMATION_NOTE = (
    "Models with automation thresholds (textdistill automate): each label's threshold, chosen on validation data as the "
    "lowest confidence reaching its target precision, and what it gives on the test data: precision and recall of the "
    "messages automated (predicted at or above the threshold), support, average precision. Labels that did not reach "
    "their target on validation are never automated. Weakest first."
)


def automation_heading(evaluation: dict) -> str:
    """The model's name and how many labels reach their target on test and on validation."""
    block = evaluation["automation"]
    return (
        f"{evaluation['name']}: {block['n_reached']} of {block['n_labels']} labels reach {block['target_precision']:g} on test "
        f"({block['n_reached_on_validation']} on validation); {fmt_score(block.get('automated_share'))} of test messages automated"
    )


RATING_NOTE = (
    "Model rating (textdistill evaluate --pool, or textdistill rate): the mean of the factor scores (0-100); good from 80 when "
    "no factor is poor, ok from 60. Mean AP and worst labels (the worst 10 %) on the test data, coverage (pool messages with a "
    "label at or above its automation threshold), balance (AUROC of telling annotated from pool messages; 0.5: representative), "
    "labels with fewer than 5 annotated messages."
)


def rating_heading(evaluation: dict) -> str:
    """The model's name and its rating."""
    rating = evaluation["rating"]
    score = DASH if rating.get("score") is None else f"{rating['score']}/100"
    return f"{evaluation['name']}: {score} ({rating.get('status')})"


def rating_table(evaluation: dict) -> Table | None:
    """The rating's factors: value, status, what was measured and what to do; None without a rating."""
    factors = (evaluation.get("rating") or {}).get("factors") or []
    if not factors:
        return None
    rows = tuple(
        (str(f.get("name", "")), str(f.get("display", DASH)), str(f.get("status", "")), str(f.get("detail") or DASH), str(f.get("advice") or DASH))
        for f in factors
    )
    return Table(("factor", "value", "status", "measured", "what to do"), rows, (False, True, False, False, False))


def automation_table(evaluation: dict, limit: int | None = None) -> Table | None:
    """Per-label automation thresholds and their test precision, recall, support and AP, labels
    missing their target first (then lowest precision first); None without thresholds."""
    rows = (evaluation.get("automation") or {}).get("labels") or []
    if not rows:
        return None
    ordered = sorted(rows, key=lambda r: (bool(r.get("reached")), number(r.get("precision")) or 0.0))
    cells = tuple(
        (
            str(row.get("label", "")),
            f"{row.get('target_precision'):g}",
            fmt_score(row.get("threshold")),
            fmt_score(row.get("precision")),
            fmt_score(row.get("recall")),
            fmt_count(row.get("support")),
            fmt_score(row.get("average_precision")),
            "yes" if row.get("reached") else "no" if row.get("reached_on_validation") else "not automated",
        )
        for row in ordered[:limit]
    )
    header = ("label", "target", "threshold", "precision", "recall", "support", "AP", "reached")
    return Table(header, cells, (False, *[True] * 6, False))


OUT_OF_SCOPE_NOTE = (
    "Models with a reject option (textdistill reject): the out-of-scope score, its threshold (chosen on validation for at most "
    "the given in-scope accuracy loss), and what it does to the test messages, all of which are in scope: the share rejected, "
    "accuracy without and with rejection (a rejected message counts as wrong) and accuracy of the messages kept."
)


def out_of_scope_table(evaluations: list[dict]) -> Table | None:
    """One row per model with a reject option; None when no model has one."""
    rows = tuple(
        (
            str(ev["name"]),
            str(block.get("score", "")),
            fmt_score(block.get("threshold")),
            fmt_score(block.get("max_in_scope_loss")),
            fmt_score(block.get("rejected_share")),
            fmt_score(block.get("accuracy")),
            fmt_score(block.get("accuracy_with_rejection")),
            fmt_score(block.get("accuracy_of_kept")),
        )
        for ev in evaluations
        if (block := ev.get("out_of_scope"))
    )
    if not rows:
        return None
    header = ("model", "score", "threshold", "max loss", "rejected", "accuracy", "with rejection", "of kept")
    return Table(header, rows, (False, False, *[True] * 6))


def confusion_table(evaluation: dict) -> Table | None:
    """The most frequently confused (true, predicted) label pairs, or None when there are none."""
    pairs = sorted(evaluation.get("confused_pairs") or [], key=lambda p: -(number(p.get("count")) or 0))
    if not pairs:
        return None
    rows = tuple(
        (str(p.get("true", "")), str(p.get("predicted", "")), fmt_count(p.get("count"))) for p in pairs[:TOP_CONFUSIONS]
    )
    return Table(("true", "predicted", "count"), rows, (False, False, True))


def dominance_sentences(analysis: Analysis) -> list[str]:
    """One sentence per model off the Pareto front naming the front models that dominate it, and
    one per slower model whose quality is within the noise of a faster one's."""
    evaluations = analysis.evaluations

    def describe(i: int) -> str:
        return f"{evaluations[i]['name']} ({analysis.title} {fmt_score(analysis.values[i])} at {fmt_ms(analysis.latency(i))} ms/message)"

    def how(j: int, i: int) -> str:
        difference = analysis.difference(j, i)
        speed = "faster" if analysis.latency(j) * FASTER < analysis.latency(i) else "as fast (within 10 %)"
        noise = interval_text(difference) if difference.assessed else "noise not assessed: no per-message results"
        return f"{speed} and more accurate ({100 * difference.value:+.1f} points, {noise})"

    dominated = dominators(analysis)
    sentences = [
        f"{describe(i)} is dominated by " + ", and by ".join(f"{describe(j)}, which is {how(j, i)}" for j in by) + "."
        for i, by in dominated.items()
        if by
    ]
    for i, by in dominated.items():
        if by:
            continue
        faster = [j for j in dominated if analysis.latency(j) * FASTER < analysis.latency(i)]
        tied = [j for j in faster if (d := analysis.difference(i, j)) is not None and d.assessed and d.sign == 0]
        if tied:
            j = min(tied, key=analysis.latency)
            difference = analysis.difference(i, j)
            sentences.append(
                f"{describe(i)} is slower than {describe(j)} and not measurably more accurate "
                f"({100 * difference.value:+.1f} points, {interval_text(difference)}: within noise)."
            )
    return sentences


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


def unplotted(analysis: Analysis) -> list[str]:
    """Names of models left out of the plot for lack of a headline metric or a positive latency."""
    return [ev["name"] for i, ev in enumerate(analysis.evaluations) if analysis.latency(i) is None or analysis.values[i] is None]


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


def _grouped(evaluations: list[dict], key: Callable[[dict], tuple[str, ...]]) -> list[tuple[tuple[str, ...], list[str]]]:
    """Distinct values of ``key`` in first-seen order, each with the names of the models that have it."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for ev in evaluations:
        groups.setdefault(key(ev), []).append(ev["name"])
    return list(groups.items())


def _models(names: list[str], evaluations: list[dict]) -> str:
    return "all" if len(names) == len(evaluations) > 1 else ", ".join(names)


def machine_table(evaluations: list[dict]) -> Table:
    """CPU, cores, instruction sets and threads: one row per distinct machine and thread count."""

    def machine(ev: dict) -> tuple[str, ...]:
        info = ev.get("machine") or {}
        sets = ", ".join(map(str, info.get("instruction_sets") or [])) or DASH
        return (str(info.get("cpu") or DASH), fmt_count(info.get("cores")), sets, fmt_count(ev.get("threads")))

    rows = tuple((_models(names, evaluations), *values) for values, names in _grouped(evaluations, machine))
    header = ("models", "cpu", "cores", "instruction sets", "threads")
    return Table(header, rows, (False, False, True, False, True))


def versions_table(evaluations: list[dict]) -> Table | None:
    """One row per package and distinct version, naming the models measured with it; None when no
    versions were recorded."""
    versions = [ev.get("versions") or {} for ev in evaluations]
    packages = list(dict.fromkeys(package for v in versions for package in v))
    if not packages:
        return None
    rows = tuple(
        (package, *values, _models(names, evaluations))
        for package in packages
        for values, names in _grouped(evaluations, lambda ev: (str((ev.get("versions") or {}).get(package) or DASH),))
    )
    return Table(("package", "version", "models"), rows, (False, False, False))


CONDITIONS_NOTE = (
    "Latency: one message at a time (batch 1), p50 and p95 over the calls shown after untimed warm-up calls. "
    "Throughput: messages per second predicting in batches, median of the repeats. "
    "Each model was measured on its own, under the thread count shown. The load average (1, 5, 15 minutes, before → after measuring) says how "
    "busy the machine was: near or above the core count, other work slowed the numbers down."
)


def conditions_table(evaluations: list[dict]) -> Table | None:
    """How each model's cost was measured, or None when no model's cost was."""

    def load(ev: dict) -> str:
        average = ev.get("load_average") or {}
        before, after = average.get("before"), average.get("after")
        if not before and not after:
            return DASH
        return " → ".join(", ".join(f"{v:.2f}" for v in values) if values else DASH for values in (before, after))

    def latency(settings: dict) -> str:
        if number(settings.get("latency_samples")) is None:
            return "batch 1"
        return f"batch 1, {fmt_count(settings['latency_samples'])} calls after {fmt_count(settings.get('warmup'))} warm-up"

    def throughput(settings: dict) -> str:
        if number(settings.get("throughput_batch_size")) is None:
            return DASH
        return (
            f"batch {fmt_count(settings['throughput_batch_size'])}, {fmt_count(settings.get('throughput_messages'))} "
            f"messages × {fmt_count(settings.get('repeats'))}"
        )

    rows = [
        (ev["name"], fmt_count(ev.get("threads")), latency(ev.get("settings") or {}), throughput(ev.get("settings") or {}), load(ev))
        for ev in evaluations
        if number(ev.get("latency_ms_p50")) is not None
    ]
    if not rows:
        return None
    header = ("model", "threads", "latency", "throughput", "load average")
    return Table(header, tuple(rows), (False, True, False, False, False))


def machines_measured_on(evaluations: list[dict]) -> str:
    """The distinct CPUs the models were measured on, with their logical core counts."""
    machines = _grouped(evaluations, lambda ev: (str((ev.get("machine") or {}).get("cpu") or "unknown CPU"), fmt_count((ev.get("machine") or {}).get("cores"))))
    parts = [f"{cpu} ({cores} logical cores)" + ("" if len(machines) == 1 else f": {', '.join(names)}") for (cpu, cores), names in machines]
    return "Measured on " + "; ".join(parts) + "."


def load_warnings(evaluations: list[dict]) -> list[str]:
    """One warning naming the models measured while the 1-minute load average was at or above the
    machine's core count, or none."""
    busy = []
    for ev in evaluations:
        average, cores = ev.get("load_average") or {}, number((ev.get("machine") or {}).get("cores"))
        loads = [load for values in (average.get("before"), average.get("after")) if values and (load := number(values[0])) is not None]
        if cores and loads and max(loads) >= cores:
            busy.append(f"{ev['name']} ({max(loads):.2f} on {fmt_count(cores)} cores)")
    if not busy:
        return []
    return [
        f"Measured on a busy machine (1-minute load average at or above the core count): {', '.join(busy)}. "
        "Latency and throughput are slower than on an idle machine; measure again when it is idle."
    ]


def latency_by_length_table(evaluations: list[dict]) -> Table | None:
    """Latency per quartile of message length (characters), or None when no model recorded it."""
    rows = tuple(
        (
            ev["name"],
            fmt_count(q.get("quartile")),
            f"{fmt_count(q.get('min_chars'))}–{fmt_count(q.get('max_chars'))}",
            fmt_count(q.get("n")),
            fmt_ms(q.get("p50_ms")),
            fmt_ms(q.get("p95_ms")),
        )
        for ev in evaluations
        for q in ev.get("latency_by_length") or []
        if isinstance(q, dict)
    )
    if not rows:
        return None
    return Table(("model", "length quartile", "characters", "messages", "p50 ms", "p95 ms"), rows, (False, True, True, True, True, True))


def text_cleaning_table(evaluations: list[dict]) -> Table | None:
    """Message length before and after clean-up (quoted replies, signatures ...): one row per
    distinct record, or None when no model recorded one."""
    keys = ("messages", "chars_before_p50", "chars_before_p95", "chars_after_p50", "chars_after_p95")
    recorded = [ev for ev in evaluations if isinstance(ev.get("text_cleaning"), dict)]
    if not recorded:
        return None
    rows = tuple(
        (_models(names, evaluations), *values)
        for values, names in _grouped(recorded, lambda ev: tuple(fmt_count(ev["text_cleaning"].get(key)) for key in keys))
    )
    header = ("models", "messages cleaned", "chars before p50", "p95", "chars after p50", "p95")
    return Table(header, rows, (False, *[True] * 5))
