"""The ``textdistill`` command: a thin shell over the Python API."""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from textdistill.compress import INT8_TOLERANCE
from textdistill.console import stderr_console, stdout_console
from textdistill.data.messages import DataSpec, MessageSet, describe_cleaning, fold_to, load_messages, read_columns, require_two_classes, text_cleaning, write_skipped_rows
from textdistill.errors import TextdistillError
from textdistill.evaluate.cost import CostSettings
from textdistill.progress import set_quiet
from textdistill.refine import drift as drift_settings
from textdistill.stages import DEFAULT_STAGES, STAGES

if TYPE_CHECKING:
    from textdistill.pipeline import RunState

# Help is click's plain layout (rich_markup_mode=None): it wraps every column to the terminal's
# width, up to 80, where rich's option table cuts long option names and syntax short ("…") and
# shows a <bool> type for every flag.
app = typer.Typer(name="textdistill", no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False)
console = stderr_console()

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
TextColumns = Annotated[
    list[str] | None,
    typer.Option("--text-column", help="Text column; repeat to join several (e.g. subject and body). Default: text."),
]
IdColumn = Annotated[str | None, typer.Option(help="Column with unique message ids.")]
LabelColumn = Annotated[str, typer.Option(help="Single-label column.")]
LabelsColumn = Annotated[str, typer.Option(help="Multi-label column.")]
LabelSep = Annotated[str, typer.Option(help="Separator between labels in the multi-label column.")]
MultiLabel = Annotated[
    bool | None,
    typer.Option("--multi-label/--single-label", help="Label mode, when the columns alone don't say.", show_default=False),
]
AnnotatedColumn = Annotated[
    str | None, typer.Option(help="Flag column (true/false) that marks which rows are annotated.")
]
CleanEmail = Annotated[bool, typer.Option("--clean-email", help="Strip quoted replies and signatures from emails.")]
CleanEmailAsTrained = Annotated[bool | None, typer.Option(help="Email clean-up (default: as the teacher was trained).", show_default=False)]
SkipBadRows = Annotated[bool, typer.Option("--skip-bad-rows", help="Skip bad rows instead of stopping; they are counted and reported.")]
Encoding = Annotated[str, typer.Option(help="Text encoding of CSV / JSONL files (a byte order mark overrides it).")]
FoldCase = Annotated[bool, typer.Option("--fold-case", help="Read labels that differ only by case or spacing (Billing, billing) as their most frequent spelling.")]
MaxTextChars = Annotated[int, typer.Option(help="Longest message text, in characters (see --long-text).")]
LongText = Annotated[str, typer.Option(help="A longer text: refuse (a bad row) or cut (keep the first --max-text-chars characters).")]
MaxTextCharsAsTrained = Annotated[int | None, typer.Option(help="Longest message text, in characters (default: as trained).", show_default=False)]
LongTextAsTrained = Annotated[str | None, typer.Option(help="A longer text: refuse or cut (default: as trained).", show_default=False)]
SKIPPED_ROWS_FILE = "skipped_rows.csv"
Threads = Annotated[int | None, typer.Option(help="CPU threads for prediction (default: all cores).")]


def _spec(
    text_column: list[str] | None,
    id_column: str | None,
    label_column: str,
    labels_column: str,
    label_sep: str,
    multi_label: bool | None,
    annotated_column: str | None,
    clean_email: bool,
    skip_bad_rows: bool,
    encoding: str,
    fold_case: bool = False,
    max_text_chars: int = 1_000_000,
    long_text: str = "refuse",
) -> DataSpec:
    return DataSpec(
        text_columns=tuple(text_column or ("text",)),
        id_column=id_column,
        label_column=label_column,
        labels_column=labels_column,
        label_sep=label_sep,
        multi_label=multi_label,
        annotated_column=annotated_column,
        clean_email=clean_email,
        skip_bad_rows=skip_bad_rows,
        encoding=encoding,
        fold_case=fold_case,
        max_text_chars=max_text_chars,
        long_text=long_text,
    )


def _version(value: bool) -> None:
    if value:
        from textdistill import __version__

        typer.echo(f"textdistill {__version__}")
        raise typer.Exit()


def _examples(*examples: str) -> str:
    """A command's epilog: example command lines, printed as written (click rewraps other
    paragraphs); an example may go on over several lines, each ending in a backslash."""
    lines = [f"  {line}" for example in examples for line in example.splitlines()]
    return "\b\nExamples:\n" + "\n".join(lines)


APP_HELP = f"""Distil a big transformer classifier of business messages into a small, fast model,
and prove it with a side-by-side report.

The pipeline's stages, in order: {", ".join(STAGES)}. textdistill demo runs them all
on a built-in sample of emails, textdistill run those a config file names; most have a command
of their own below."""


@app.callback(help=APP_HELP, epilog=_examples("textdistill demo --out /tmp/demo", "textdistill run config.toml --out runs/first", "textdistill COMMAND --help"))
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """The options before a command (the help is APP_HELP)."""


def _names(text: str) -> tuple[str, ...]:
    """``"mask, pos"`` -> ``("mask", "pos")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _report_skipped(messages: MessageSet, listing: Path | None = None) -> None:
    """Print the warnings of reading ``messages`` and its skipped rows: the first 5, and where
    all of them are listed (``listing``)."""
    for warning in messages.warnings:
        console.print(f"{messages.source}: {warning}", style="yellow")
    if cleaning := text_cleaning(messages):
        console.print(f"{messages.source}: {describe_cleaning(cleaning)}")
    if messages.skipped:
        console.print(f"{messages.source}: {len(messages.skipped)} bad rows skipped", style="yellow")
        for skipped in messages.skipped[:5]:
            console.print(f"  row {skipped.row}, column {skipped.column!r}: {skipped.problem}", highlight=False)
        more = len(messages.skipped) - 5
        where = f"all listed in {listing}" if listing else ""
        if more > 0:
            console.print(f"  ... and {more} more" + (f" ({where})" if where else ""), highlight=False)
        elif where:
            console.print(f"  ({where})", highlight=False)


def _write_skipped(out: Path, *sets: MessageSet | None) -> None:
    """List every skipped row of ``sets`` in ``out``/skipped_rows.csv (when there are any)."""
    skipped = list(dict.fromkeys(row for messages in sets if messages is not None for row in messages.skipped))
    if skipped:
        write_skipped_rows(skipped, out / SKIPPED_ROWS_FILE)


def _list_skipped_inputs(paths: list[str], spec: DataSpec, out: Path) -> None:
    """Report and list in ``out`` the skipped rows of the input files ``paths``: read again, one
    at a time, as the workers read them (they hand on counts only)."""
    sets = [load_messages(path, spec, annotated=False) for path in paths]
    for messages in sets:
        _report_skipped(messages, out / SKIPPED_ROWS_FILE)
    _write_skipped(out, *sets)


def _train_and_validation(train: Path, validation: Path | None, fraction: float, seed: int, spec: DataSpec, out: Path):
    """Annotated training messages and the validation messages: a file, or a seeded split."""
    messages = load_messages(train, spec).annotated()
    _report_skipped(messages, out / SKIPPED_ROWS_FILE)
    require_two_classes(messages)
    if validation is None:
        from textdistill.data.split import train_validation_split  # sklearn: imported when a split is made

        return train_validation_split(messages, fraction, seed)
    held_out = load_messages(validation, replace(spec, multi_label=messages.multi_label), held_out=True).annotated()
    if spec.fold_case:
        held_out = fold_to(held_out, {label for labels in messages.labels for label in labels})
    _report_skipped(held_out, out / SKIPPED_ROWS_FILE)
    return messages, held_out


@app.command(
    epilog=_examples("textdistill demo --out /tmp/demo", "textdistill demo --serve --port 8000"),
)
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the sample data and the run.")] = Path("textdistill-demo"),
    threads: Threads = None,
    quiet: Quiet = False,
    serve: Annotated[bool, typer.Option("--serve", help="Then serve the best student over HTTP (see textdistill serve).")] = False,
    host: Annotated[str, typer.Option(help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --serve: port to listen on.")] = 8000,
) -> None:
    """Run every stage on a built-in sample of customer emails.

    Writes a sample dataset (hierarchical, partly multi-label, with an unannotated pool) and
    the config it runs (OUT/config.toml: edit it and rerun with textdistill run), trains and
    evaluates every configured model, and prints the results table and where the report is.
    With --serve it then serves the student with the best macro-F1 on the test set.
    """
    from textdistill.demo import best_student, planted_errors_found, run_demo

    if serve:
        from textdistill.serve import require_serve_extra

        require_serve_extra()  # before minutes of training, not after
    set_quiet(quiet)
    state = run_demo(out, threads=threads)
    _print_results(state, planted_errors_found(out, state))
    if serve:
        from textdistill.serve import ServeSettings
        from textdistill.serve.server import run_server

        student = best_student(out)
        typer.echo(f"Serving the best student, {student.name} ({student}), on http://{host}:{port} (docs: /docs)")
        run_server(student, ServeSettings(threads=threads), host=host, port=port)


def _print_results(state: RunState, note: str | None = None) -> None:
    """The last words of run and demo: the results table (the report's rows), the suggest stage's
    queue and label issues, ``note``, and the report's path."""
    if state.report_html is None:
        return
    from textdistill.evaluate.report.terminal import print_results

    out = stdout_console()
    out.print()
    print_results(out, state.evaluations)
    if state.suggestions is not None:
        _print_queue(state)
    if state.label_check is not None:
        _print_label_issues(state)
    if note:
        typer.echo(note)
    typer.echo(f"Report: {state.report_html}")


def _print_label_issues(state: RunState, shown: int = 5) -> None:
    """The most suspect training annotations of the suggest stage's label check, and where the rest is."""
    check = state.label_check
    typer.echo(f"\nAnnotations that look wrong ({check.n_flagged} of {len(check)}; the first {min(shown, check.n_flagged)}):")
    for i in check.ranked(min(shown, check.n_flagged)):
        text = " ".join(check.texts[i].split())
        given, suggested = "; ".join(check.given[i]) or "(none)", "; ".join(check.suggested[i]) or "(none)"
        typer.echo(f"  {check.ids[i]}: {given} -> {suggested}?\n     {text[:60] + '...' if len(text) > 60 else text}")
    typer.echo(f"Label issues: {state.label_issues}")


def _print_queue(state: RunState, shown: int = 5) -> None:
    """The first messages of the suggest stage's queue, one line each, and where the rest is."""
    suggestions, texts = state.suggestions, state.unannotated.texts
    typer.echo(f"\nAnnotate next ({suggestions.strategy}; the first {min(shown, len(suggestions.picks))} of {len(suggestions.picks)}):")
    for rank, pick in enumerate(suggestions.picks[:shown], 1):
        text = " ".join(texts[pick.index].split())
        typer.echo(f"  {rank}. {text[:60] + '...' if len(text) > 60 else text}\n     {pick.reason}")
    typer.echo(f"Queue: {state.queue}")


_STAGE_LINES = "\n".join(f"  {name:<10}{what}" for name, what in STAGES.items())
RUN_HELP = f"""Run the stages a config file names, into one run directory.

The stages, in the order they run (without [run] stages: {", ".join(DEFAULT_STAGES)}):

\b
{_STAGE_LINES}

An example config (all sections and keys: README.md, "Run configuration"):

\b
  [run]
  stages = [{", ".join(f'"{name}"' for name in DEFAULT_STAGES)}]
  seed = 0

\b
  [data]
  train = "train.csv"          # relative to this file
  test = "test.csv"
  unannotated = "pool.csv"     # optional
  text_columns = ["subject", "body"]
  labels_column = "labels"
  clean_email = true

\b
  [evaluate]
  threads = 2
  # two-class data: the positive class (default: the rarer one)
  # positive_label = "spam"

At the end it prints the results table (the report's rows) and where the report is."""


@app.command(help=RUN_HELP, epilog=_examples("textdistill run config.toml --out runs/first"))
def run(
    config: Annotated[Path, typer.Argument(help="TOML file: [run], [data], [teacher], [[students]], [evaluate], ...")],
    out: Annotated[Path | None, typer.Option(help="Run directory (default: runs/NAME, NAME the config file's name without .toml).")] = None,
    quiet: Quiet = False,
) -> None:
    """textdistill run: the pipeline of a config file (help: RUN_HELP)."""
    from textdistill.pipeline import Pipeline, RunConfig

    set_quiet(quiet)
    _print_results(Pipeline(RunConfig.from_toml(config), out or Path("runs") / config.stem, config_path=config).run())


@app.command(
    epilog=_examples(
        "textdistill baseline --train train.csv --out models/baseline",
        "textdistill baseline --train emails.jsonl --text-column subject \\\n"
        "    --text-column body --labels-column tags --threshold-mode per_label \\\n"
        "    --out models/baseline  # multi-label emails",
    )
)
def baseline(
    train: Annotated[Path, typer.Option(help="Annotated messages (CSV, JSONL or Parquet).")],
    out: Annotated[Path, typer.Option(help="Directory to save the model in.")],
    validation: Annotated[Path | None, typer.Option(help="Validation file (default: split off train).")] = None,
    validation_fraction: Annotated[float, typer.Option(help="Share of train held out when no validation file is given.")] = 0.1,
    threshold_mode: Annotated[str, typer.Option(help="Multi-label thresholds: global, auto (per label where it has enough validation examples) or per_label.")] = "global",
    multi_label_loss: Annotated[str, typer.Option(help="Multi-label: bce, or balanced (a rare label's examples weigh more).")] = "bce",
    c: Annotated[float, typer.Option("--C", help="Inverse regularisation strength of the logistic regression.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the validation split.")] = 0,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    label_column: LabelColumn = "label",
    labels_column: LabelsColumn = "labels",
    label_sep: LabelSep = ";",
    multi_label: MultiLabel = None,
    annotated_column: AnnotatedColumn = None,
    clean_email: CleanEmail = False,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    fold_case: FoldCase = False,
    max_text_chars: MaxTextChars = 1_000_000,
    long_text: LongText = "refuse",
    quiet: Quiet = False,
) -> None:
    """Train the TF-IDF + logistic regression baseline.

    It stands for "the model in production today": every other model is compared with it.
    """
    from textdistill.models.baseline import BaselineConfig
    from textdistill.training.recipes import train_baseline

    set_quiet(quiet)
    spec = _spec(text_column, id_column, label_column, labels_column, label_sep, multi_label, annotated_column, clean_email, skip_bad_rows, encoding, fold_case, max_text_chars, long_text)
    messages, held_out = _train_and_validation(train, validation, validation_fraction, seed, spec, out)
    model = train_baseline(BaselineConfig(C=c, multi_label_loss=multi_label_loss), messages, held_out, out, spec=spec, threshold_mode=threshold_mode)
    _write_skipped(out, messages, held_out)
    typer.echo(f"Saved baseline ({len(model.label_space)} labels, {len(messages)} training messages) to {out}")


@app.command(
    epilog=_examples(
        "textdistill teach --train train.csv --model minilm-l6 --method full \\\n    --epochs 3 --out models/teacher",
        "textdistill teach --train train.csv --model mpnet-base --method lora:16 \\\n    --out models/teacher-lora",
    )
)
def teach(
    train: Annotated[Path, typer.Option(help="Annotated messages (CSV, JSONL or Parquet).")],
    out: Annotated[Path, typer.Option(help="Directory to save the teacher in (a checkpoint lives there while training).")],
    model: Annotated[str, typer.Option(help="Encoder: an alias (mpnet-base, minilm-l6, minilm-l3), a local directory or a hub id.")] = "minilm-l6",
    method: Annotated[str, typer.Option(help="full | freeze:K | bitfit | adapter[:SIZE] | lora[:RANK] | head")] = "full",
    validation: Annotated[Path | None, typer.Option(help="Validation file (default: split off train).")] = None,
    validation_fraction: Annotated[float, typer.Option(help="Share of train held out when no validation file is given.")] = 0.1,
    epochs: Annotated[int, typer.Option(help="Training epochs (early stopping may end sooner).")] = 3,
    batch_size: Annotated[int, typer.Option(help="Messages per training step.")] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate of the encoder.")] = 5e-5,
    head_lr: Annotated[float, typer.Option(help="Learning rate of the classification head.")] = 2e-3,
    max_length: Annotated[int, typer.Option(help="Tokens per window (per message with --long-messages head_tail).")] = 128,
    long_messages: Annotated[str, typer.Option(help="A message over --max-length tokens: windows (read all of it) or head_tail (cut).")] = "windows",
    stride: Annotated[int | None, typer.Option(help="Text tokens between window starts (default: 3/4 of a window).", show_default=False)] = None,
    max_windows: Annotated[int, typer.Option(help="Most windows per message; beyond, the first ones and the last.")] = 16,
    window_pooling: Annotated[str, typer.Option(help="How windows combine: mean, max or mean_max.")] = "mean",
    seed: Annotated[int, typer.Option(help="Seed of the split, the initialisation and the batch order.")] = 0,
    threshold_mode: Annotated[str, typer.Option(help="Multi-label thresholds: global, auto (per label where it has enough validation examples) or per_label.")] = "global",
    multi_label_loss: Annotated[str, typer.Option(help="Multi-label: bce, focal (easy examples weigh less) or balanced (a rare label's weigh more).")] = "bce",
    patience: Annotated[int, typer.Option(help="Epochs without a better validation score before stopping.")] = 2,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    label_column: LabelColumn = "label",
    labels_column: LabelsColumn = "labels",
    label_sep: LabelSep = ";",
    multi_label: MultiLabel = None,
    annotated_column: AnnotatedColumn = None,
    clean_email: CleanEmail = False,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    fold_case: FoldCase = False,
    max_text_chars: MaxTextChars = 1_000_000,
    long_text: LongText = "refuse",
    quiet: Quiet = False,
) -> None:
    """Fine-tune a pretrained encoder as the teacher.

    Fully or parameter-efficiently, by --method: full fine-tuning; freeze:K (embeddings and
    the bottom K layers frozen); bitfit (biases and head); adapter (Houlsby bottleneck
    adapters); lora (via peft); head (encoder frozen, logistic-regression head on its
    features). Every method starts from a linear-probe head. Uses CUDA (with bf16) when
    present, else the CPU.

    Interrupted? Run the same command again: it resumes from the checkpoint in --out.
    """
    from textdistill.models.transformer import EncoderConfig, TransformerClassifier
    from textdistill.training.arguments import TrainingArguments
    from textdistill.training.recipes import train_teacher
    from textdistill.tuning import parse_method

    set_quiet(quiet)
    try:
        parse_method(method)
        config = EncoderConfig(
            model=model, method=method, max_length=max_length, long_messages=long_messages, stride=stride, max_windows=max_windows, window_pooling=window_pooling
        )
    except ValueError as exc:
        raise TextdistillError(str(exc)) from None
    spec = _spec(text_column, id_column, label_column, labels_column, label_sep, multi_label, annotated_column, clean_email, skip_bad_rows, encoding, fold_case, max_text_chars, long_text)
    messages, held_out = _train_and_validation(train, validation, validation_fraction, seed, spec, out)
    arguments = TrainingArguments(
        epochs=epochs, batch_size=batch_size, learning_rate=lr, head_learning_rate=head_lr, seed=seed, early_stopping_patience=patience,
        multi_label_loss=multi_label_loss,
    )
    teacher = TransformerClassifier(config, training=arguments)
    train_teacher(teacher, messages, held_out, out, spec=spec, threshold_mode=threshold_mode)
    _write_skipped(out, messages, held_out)
    # From the manifest: saving merges LoRA into the encoder, after which nothing counts as trained.
    trained = teacher.manifest.config
    typer.echo(f"Saved teacher ({method}, {trained['trainable_params']:,} of {trained['total_params']:,} parameters trained) to {out}")


@app.command(
    epilog=_examples(
        "textdistill label --teacher models/teacher --texts pool.csv --out transfer/",
        "textdistill label --teacher models/teacher --texts pool.csv \\\n    --augment mask,pos,ngram --augment-factor 4 --out transfer/",
        "textdistill label --teacher models/teacher --texts pool.parquet \\\n    --out transfer/ --engine ray --ray-address head:6379",
    )
)
def label(
    teacher: Annotated[Path, typer.Option(help="A saved teacher (or any saved model) directory.")],
    texts: Annotated[
        Path,
        typer.Option(
            help="Unannotated messages (CSV, JSONL or Parquet); label columns are ignored. Columns origin and source_id "
            "(as textdistill augment writes them) are kept as each message's provenance."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Transfer-set directory (manifest.json + Parquet shards).")],
    augment: Annotated[str | None, typer.Option(help="Augmentation methods, comma-separated: mask, pos, ngram (Tang et al. 2019).")] = None,
    augment_factor: Annotated[int, typer.Option(help="Augmented texts made per message.")] = 1,
    min_confidence: Annotated[float | None, typer.Option(help="Keep only messages whose top probability is at least this.")] = None,
    max_entropy: Annotated[float | None, typer.Option(help="Keep only messages whose normalised entropy is at most this.")] = None,
    top_k: Annotated[int | None, typer.Option(help="Store only the k largest logits per message (many labels).")] = None,
    shard_size: Annotated[int, typer.Option(help="Messages per Parquet shard (the unit of resumption).")] = 1024,
    seed: Annotated[int, typer.Option(help="Seed of the augmentation.")] = 0,
    engine: EngineName = "local",
    ray_address: RayAddress = None,
    actors: Actors = None,
    cpus_per_actor: CpusPerActor = None,
    gpus_per_actor: GpusPerActor = None,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    clean_email: CleanEmailAsTrained = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    quiet: Quiet = False,
) -> None:
    """Score messages with the teacher: the transfer set.

    The soft targets students learn from: each message's text, id and the teacher's logits,
    for unannotated messages and augmented copies of them. Interrupted? Run the same command
    again: finished shards are kept and the rest is scored.
    """
    from textdistill.engines import make_engine
    from textdistill.transfer import AugmentConfig, label_messages

    set_quiet(quiet)
    scorer = make_engine(engine, ray_address=ray_address, actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor)
    spec = _spec_as_trained(teacher, text_column=tuple(text_column) if text_column else None, clean_email=clean_email)
    spec = replace(spec, id_column=id_column, annotated_column=None, skip_bad_rows=skip_bad_rows, encoding=encoding)
    messages = load_messages(texts, spec, annotated=False)
    _report_skipped(messages, out / SKIPPED_ROWS_FILE)
    provenance = read_columns(messages, ("origin", "source_id"), encoding)
    config = None
    if augment:
        config = AugmentConfig(methods=_names(augment), factor=augment_factor, seed=seed)
    transfer = label_messages(
        teacher, messages, out, augment=config, shard_size=shard_size, min_confidence=min_confidence, max_entropy=max_entropy, top_k=top_k,
        engine=scorer, provenance=provenance,
    )
    _write_skipped(out, messages)
    counts = transfer.manifest["counts"]
    typer.echo(
        f"Transfer set: {counts['written']:,} messages ({counts['originals']:,} original, {counts['augmented']:,} augmented, "
        f"{counts['filtered_out_total']:,} filtered out) in {out}"
    )


@app.command(
    epilog=_examples(
        "textdistill augment --texts pool.csv --factor 4 --seed 1 \\\n    --exclude transfer/ --out more.csv",
        "textdistill label --teacher models/teacher --texts more.csv \\\n    --text-column text --id-column id --out transfer-more/",
        "textdistill distill ... --transfer transfer/ --transfer transfer-more/",
    )
)
def augment(
    texts: Annotated[Path, typer.Option(help="Messages (CSV, JSONL or Parquet) to make new texts from; label columns are ignored.")],
    out: Annotated[Path, typer.Option(help="CSV to write: id, text, origin (the method that made it), source_id.")],
    methods: Annotated[str, typer.Option(help="Augmentation methods, comma-separated: mask, pos, ngram (Tang et al. 2019).")] = "mask,pos,ngram",
    factor: Annotated[int, typer.Option(help="New texts made per message.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the augmentation: use another than the transfer set's for new copies.")] = 0,
    exclude: Annotated[
        list[Path] | None, typer.Option(help="Transfer set whose texts are left out; repeatable (to add new copies to it).")
    ] = None,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    clean_email: CleanEmail = False,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
) -> None:
    """Write augmented copies of messages to a CSV.

    Texts already seen (in the messages, or in an --exclude transfer set) are left out. Label
    the file with textdistill label and pass both transfer sets to distill to grow a transfer
    set without scoring its messages again.
    """
    import csv

    from textdistill.transfer import AugmentConfig, TransferSet
    from textdistill.transfer.augment import augment_messages

    spec = DataSpec(text_columns=tuple(text_column or ("text",)), id_column=id_column, clean_email=clean_email, skip_bad_rows=skip_bad_rows, encoding=encoding)
    messages = load_messages(texts, spec, annotated=False)
    listing = out.with_name(f"{out.stem}.{SKIPPED_ROWS_FILE}")
    _report_skipped(messages, listing)
    seen = set(messages.texts)
    for path in exclude or []:
        seen.update(TransferSet.load(path).texts)
    config = AugmentConfig(methods=_names(methods), factor=factor, seed=seed)
    made = augment_messages(messages.texts, messages.ids, config, seen)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "origin", "source_id"])
        writer.writerows(zip(made.ids, made.texts, made.origins, made.source_ids))
    if messages.skipped:
        write_skipped_rows(messages.skipped, listing)
    counts = made.counts
    typer.echo(
        f"Wrote {len(made):,} new texts to {out} ({counts['augmented']:,} made from {len(messages):,} messages, "
        f"{counts['duplicates_removed']:,} already seen, {counts['augment_unchanged']:,} unchanged)"
    )


DISTILL_SYNTAX = """\b
Losses (--loss, repeatable): NAME[:WEIGHT[:KEY=VALUE,...]], e.g.
  kd:0.7:temperature=2    the teacher's soft targets at temperature 2
  ce:0.3                  the labels of --train
  tinybert_hidden:1:layer_map={"1":4}
Names: kd, ce, logit_mse, cosine, pkd, tinybert_embedding, tinybert_hidden,
tinybert_attention. Default: kd:0.7:temperature=2 and ce:0.3; for a
single-label bilstm: logit_mse and ce:0.1.

\b
Student settings (--set KEY=VALUE, repeatable), by --student:
  static       embeddings=teacher|glove|hash, dim, bigram_buckets, hidden
  bilstm       embeddings, dim, hidden, mlp
  transformer  encoder=teacher-layers|minilm-l6|minilm-l3|PATH,
               layers=[0,2,4], max_length"""


@app.command(
    epilog=DISTILL_SYNTAX
    + "\n\n"
    + _examples(
        "textdistill distill --teacher models/teacher --transfer transfer/ \\\n    --train train.csv --student static --out models/static",
        "textdistill distill --teacher t1 --teacher t2 --transfer transfer/ \\\n"
        "    --train train.csv --student transformer --set encoder=minilm-l3 \\\n"
        "    --loss kd:1:temperature=2 --out models/l3",
    )
)
def distill(
    teacher: Annotated[list[Path], typer.Option(help="A saved teacher; repeat for an ensemble (soft targets averaged).")],
    student: Annotated[str, typer.Option(help="Student kind: static, bilstm or transformer.")],
    out: Annotated[Path, typer.Option(help="Directory to save the student in.")],
    transfer: Annotated[
        list[Path] | None,
        typer.Option(
            help="Transfer set written by textdistill label; repeat to join several (a text in two is kept once). "
            "Omit it to train the student on --train labels alone, as a control."
        ),
    ] = None,
    train: Annotated[Path | None, typer.Option(help="Annotated messages: their labels join the soft targets.")] = None,
    validation: Annotated[Path | None, typer.Option(help="Validation file (default: split off train).")] = None,
    validation_fraction: Annotated[float, typer.Option(help="Share of train held out when no validation file is given.")] = 0.1,
    teacher_weight: Annotated[list[float] | None, typer.Option(help="Weight of each --teacher, in order (default: equal).")] = None,
    loss: Annotated[
        list[str] | None,
        typer.Option(help="Loss term, repeatable: NAME[:WEIGHT[:KEY=VALUE,...]] (see below; default: per student kind)."),
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option("--set", help="Student setting KEY=VALUE, repeatable, e.g. dim=128 (see below)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: per student kind, raised on small sets to reach --min-steps).")] = None,
    min_steps: Annotated[
        int | None, typer.Option(help="Optimizer steps to train at least, adding epochs on small sets (default: per student kind; 0 with --epochs).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Messages per training step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate of the student's body.")] = None,
    head_lr: Annotated[float | None, typer.Option(help="Learning rate of the student's head.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split, the initialisation and the batch order.")] = 0,
    threshold_mode: Annotated[str, typer.Option(help="Multi-label thresholds: global, auto (per label where it has enough validation examples) or per_label.")] = "global",
    multi_label_loss: Annotated[str | None, typer.Option(help="Multi-label: the ce term's label loss, bce, focal or balanced (default: bce).")] = None,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    clean_email: CleanEmailAsTrained = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    quiet: Quiet = False,
) -> None:
    """Distil a small, fast student from one or more teachers.

    The student learns the teachers' soft targets on a transfer set (and the labels of
    --train). Students: static (mean-pooled token embeddings, initialised from the teacher,
    GloVe or hashed n-grams; numpy-only inference), bilstm (Tang et al.), transformer (every
    other layer of the teacher, or --set encoder=minilm-l3 for a packaged smaller encoder).
    """
    from textdistill.distill.recipe import StudentSpec, distill as distill_student, parse_loss_term, parse_setting

    set_quiet(quiet)
    spec = _spec_as_trained(teacher[0], text_column=tuple(text_column) if text_column else None, clean_email=clean_email)
    spec = replace(spec, id_column=id_column, skip_bad_rows=skip_bad_rows, encoding=encoding)
    messages = held_out = None
    if train is not None:
        messages, held_out = _train_and_validation(train, validation, validation_fraction, seed, spec, out)
    training = {"epochs": epochs, "min_steps": min_steps, "batch_size": batch_size, "learning_rate": lr, "head_learning_rate": head_lr, "seed": seed,
                "multi_label_loss": multi_label_loss}
    student_spec = StudentSpec(
        student,
        dict(parse_setting(item) for item in setting or []),
        [parse_loss_term(item) for item in loss] if loss else None,
        {key: value for key, value in training.items() if value is not None},
    )
    model = distill_student(
        student_spec,
        teachers=teacher,
        transfer_dirs=transfer or [],
        out_dir=out,
        train=messages,
        validation=held_out,
        teacher_weights=teacher_weight,
        threshold_mode=threshold_mode,
        spec_data={**asdict(spec), "text_columns": list(spec.text_columns)},
    )
    _write_skipped(out, messages, held_out)
    typer.echo(f"Saved {student} student ({model.n_params:,} parameters) to {out}")


@app.command("early-exit", epilog=_examples("textdistill early-exit models/student-l6 --transfer transfer/ \\\n    --out models/student-l6-exit"))
def early_exit(
    model_dir: Annotated[Path, typer.Argument(help="A saved transformer model: a teacher or a transformer student.")],
    transfer: Annotated[Path, typer.Option(help="Transfer set whose texts train the branches (no labels needed).")],
    out: Annotated[Path, typer.Option(help="Directory to save the early-exit model in.")],
    threshold: Annotated[float, typer.Option(help="Exit when a branch's normalised entropy is below this (0: never early).")] = 0.1,
    epochs: Annotated[int, typer.Option(help="Epochs of branch training.")] = 3,
    batch_size: Annotated[int, typer.Option(help="Messages per training step.")] = 32,
    lr: Annotated[float, typer.Option(help="Learning rate of the branches.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and the batch order.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Add FastBERT early exit to a transformer.

    A classifier branch after every layer, trained by self-distillation from the model's own
    final classifier on the transfer-set texts. At prediction time a message leaves at the
    first layer whose branch is confident enough (normalised entropy below --threshold);
    batches shrink as messages leave. evaluate reports accuracy and mean layers used for a
    sweep of thresholds.
    """
    from textdistill.students.early_exit import train_early_exit
    from textdistill.transfer.store import TransferSet

    set_quiet(quiet)
    texts = TransferSet.load(transfer).texts
    model = train_early_exit(model_dir, texts, out, epochs=epochs, batch_size=batch_size, learning_rate=lr, seed=seed, threshold=threshold)
    typer.echo(f"Saved early-exit model ({model.n_layers} layers, threshold {threshold}) to {out}")


@app.command(
    epilog=_examples(
        "textdistill compress models/student-static --onnx \\\n    --out models/student-static-onnx",
        "textdistill compress models/student-l6 --onnx --int8 \\\n    --out models/student-l6-int8",
    )
)
def compress(
    model_dir: Annotated[Path, typer.Argument(help="A saved static, BiLSTM or transformer model (student or teacher).")],
    out: Annotated[Path, typer.Option(help="Directory to save the compressed model in.")],
    onnx: Annotated[bool, typer.Option("--onnx", help="Export the whole model, head and softmax/sigmoid included, to ONNX (fp32).")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Dynamic int8 weights (ONNX Runtime); implies --onnx.")] = False,
    int8_tolerance: Annotated[
        float, typer.Option(help="With --int8: the largest probability change on the probe texts the int8 copy may make (more: refused).")
    ] = INT8_TOLERANCE,
) -> None:
    """Make an ONNX copy of a model, optionally with int8 weights.

    A deployable copy that predicts without torch. The export is checked against the original
    on probe texts before it is written: probabilities within 1e-4 for fp32, within
    --int8-tolerance for int8. The result is an ordinary model directory: evaluate measures
    it, the report puts it beside its source, serve serves it.
    """
    if not (onnx or int8):
        raise TextdistillError("say what to make: --onnx (fp32 ONNX), --int8 (int8 ONNX), or both.")
    from textdistill.compress.convert import compress_model, probe_change

    model = compress_model(model_dir, out, int8=int8, int8_tolerance=int8_tolerance)
    typer.echo(f"Saved {model.precision} ONNX model to {out} (largest probability change on the probe texts: {probe_change(model):.2g})")


def _spec_as_trained(model_dir: Path, **overrides) -> DataSpec:
    """The data settings a model was trained with, with ``overrides`` that are not None."""
    from textdistill.models.manifest import Manifest

    manifest = Manifest.read(model_dir / "manifest.json")
    keys = {"text_column": "text_columns"}
    changes = {keys.get(k, k): v for k, v in overrides.items() if v is not None}
    return replace(DataSpec.from_dict(manifest.config.get("data", {})), multi_label=manifest.multi_label, **changes)


def _annotated_as_trained(
    model_dir: Path, path: Path, *, text_column: list[str] | None, id_column: str | None, skip_bad_rows: bool, encoding: str,
    annotated_column: str | None = None, **overrides,
) -> MessageSet:
    """Annotated messages read with the data settings ``model_dir`` was trained with (``overrides``
    that are not None win), labels folded to the model's spelling when it folds case. With
    ``annotated_column``, rows it flags as not annotated are read as unannotated."""
    spec = _spec_as_trained(model_dir, text_column=tuple(text_column) if text_column else None, **overrides)
    spec = replace(spec, id_column=id_column, annotated_column=annotated_column, skip_bad_rows=skip_bad_rows, encoding=encoding)
    messages = load_messages(path, spec, held_out=annotated_column is not None)
    if spec.fold_case:
        from textdistill.models.manifest import Manifest

        messages = fold_to(messages, Manifest.read(model_dir / "manifest.json").labels)
    return messages


@app.command(
    epilog=_examples("textdistill evaluate models/baseline --data test.csv \\\n    --json eval/baseline.json --threads 2"),
)
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory.")],
    data: Annotated[Path, typer.Option(help="Annotated test messages.")],
    json_path: Annotated[Path, typer.Option("--json", help="Where to write the results (JSON).")],
    name: Annotated[str | None, typer.Option(help="Model name in the report (default: the directory name).")] = None,
    threads: Threads = None,
    cost: Annotated[bool, typer.Option(help="Measure latency, throughput, memory and size (--no-cost: quality only).", show_default=False)] = True,
    latency_samples: Annotated[
        int, typer.Option(help="Messages timed one by one for the latency percentiles, drawn evenly from the length quartiles of the data.")
    ] = CostSettings.latency_samples,
    min_messages: Annotated[
        int, typer.Option(help="Messages predicted per throughput run, at least (rounded up to whole batches of 256).")
    ] = CostSettings.min_messages,
    repeats: Annotated[int, typer.Option(help="Throughput runs; the median is reported.")] = CostSettings.repeats,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    label_column: Annotated[str | None, typer.Option(help="Single-label column (default: as trained).")] = None,
    labels_column: Annotated[str | None, typer.Option(help="Multi-label column (default: as trained).")] = None,
    label_sep: Annotated[str | None, typer.Option(help="Separator between labels (default: as trained).")] = None,
    clean_email: Annotated[bool | None, typer.Option(help="Email clean-up (default: as trained).", show_default=False)] = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    max_text_chars: MaxTextCharsAsTrained = None,
    long_text: LongTextAsTrained = None,
    positive_label: Annotated[
        str | None, typer.Option(help="Two-class models: the positive class, whose precision, recall and F1 are reported (default: the rarer class in --data).")
    ] = None,
    pool: Annotated[Path | None, typer.Option(help="Unannotated messages: adds the model rating (coverage, balance; see textdistill rate) to the JSON.")] = None,
    train: Annotated[Path | None, typer.Option(help="With --pool: the annotated messages, for the rating's balance and labels with few examples.")] = None,
    quiet: Quiet = False,
) -> None:
    """Measure a model's quality and cost on annotated messages.

    Quality: accuracy, micro/macro precision, recall, F1, per-label scores with average
    precision, and for two-class models the positive class's (see --positive-label). Cost: ms
    per message at batch 1 (p50, p95), messages/s at batch 256, peak memory of a fresh
    process, size on disk, parameters. --latency-samples, --min-messages and --repeats are the
    [evaluate] keys latency_samples, min_messages and repeats of a run config.

    The data is read with the column settings the model was trained with, unless given here.
    """
    from textdistill.evaluate.evaluation import evaluate_model, write_evaluation

    set_quiet(quiet)
    messages = _annotated_as_trained(
        model_dir, data, text_column=text_column, label_column=label_column, labels_column=labels_column, label_sep=label_sep,
        clean_email=clean_email, max_text_chars=max_text_chars, long_text=long_text, id_column=id_column, skip_bad_rows=skip_bad_rows,
        encoding=encoding,
    )  # fmt: skip
    _report_skipped(messages, json_path)
    rating_data = _rating_data(model_dir, pool, train, text_column=text_column, label_column=label_column, labels_column=labels_column,
                               label_sep=label_sep, clean_email=clean_email, skip_bad_rows=skip_bad_rows, encoding=encoding)  # fmt: skip
    result = evaluate_model(
        model_dir,
        messages,
        name=name,
        skip_bad_rows=skip_bad_rows,
        cost=CostSettings(measure=cost, threads=threads, latency_samples=latency_samples, min_messages=min_messages, repeats=repeats),
        positive_label=positive_label,
        **rating_data,
    )
    write_evaluation(result, json_path)
    accuracy = "" if result["accuracy"] is None else f"accuracy {result['accuracy']:.4f}, "  # none for multi-label
    positive = result["positive_class"]
    typer.echo(
        f"{result['name']}: {accuracy}micro-F1 {result['micro_f1']:.4f}, macro-F1 {result['macro_f1']:.4f}"
        + (
            f", positive class {positive['label']!r}: precision {positive['precision']:.4f}, "
            f"recall {positive['recall']:.4f}, F1 {positive['f1']:.4f}"
            if positive
            else ""
        )
        + (
            f", {result['latency_ms_p50']:.2f} ms/message, {result['throughput_per_s']:,.0f} messages/s, "
            f"peak {result['peak_rss_mb']:.0f} MB"
            if cost
            else ""
        )
        + (f", {result['skipped_rows']} rows skipped" if result["skipped_rows"] else "")
    )
    if automation := result["automation"]:
        typer.echo(
            f"Automation: {automation['n_reached']} of {automation['n_labels']} labels reach {automation['target_precision']:g} on this data "
            f"({automation['n_reached_on_validation']} on validation)"
        )
    if rejection := result["out_of_scope"]:
        typer.echo(
            f"Out of scope: {rejection['rejected_share']:.1%} of these in-scope messages rejected ({rejection['score']}), "
            f"accuracy {rejection['accuracy']:.3f} -> {rejection['accuracy_with_rejection']:.3f}"
        )
    if rating := result.get("rating"):
        typer.echo(f"Rating: {rating['score']}/100 ({rating['status']}); " + ", ".join(f"{f['name'].lower()} {f['display']} ({f['status']})" for f in rating["factors"]))
    typer.echo(f"Results: {json_path}")


def _rating_data(model_dir: Path, pool: Path | None, train: Path | None, *, text_column, skip_bad_rows: bool, encoding: str, **columns) -> dict:
    """evaluate's ``pool`` and ``annotated`` messages for the rating, read as the model was trained
    (ids included, so annotated messages leave the pool); none without --pool."""
    if pool is None:
        if train is not None:
            raise TextdistillError("--train is for the model rating, which needs --pool UNANNOTATED as well.")
        return {}
    spec = _spec_as_trained(model_dir, text_column=tuple(text_column) if text_column else None, clean_email=columns.get("clean_email"))
    spec = replace(spec, annotated_column=None, skip_bad_rows=skip_bad_rows, encoding=encoding)
    messages = load_messages(pool, spec, annotated=False)
    _report_skipped(messages)
    annotated = None
    if train is not None:
        annotated = _annotated_as_trained(model_dir, train, text_column=text_column, id_column=spec.id_column, skip_bad_rows=skip_bad_rows, encoding=encoding, **columns)
        _report_skipped(annotated)
    return {"pool": messages, "annotated": annotated}


@app.command(epilog=_examples("textdistill report runs/first eval/teacher.json --out report/"))
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories or evaluation JSON files.")],
    out: Annotated[Path, typer.Option(help="Directory for report.md and report.html.")],
    title: Annotated[str, typer.Option(help="Report title.")] = "textdistill report",
) -> None:
    """Build the side-by-side report: Markdown and one HTML page.

    The HTML page is self-contained (styles and plot inline): send it as one file.
    """
    from textdistill.evaluate.report import build_report, collect_evaluations

    try:
        evaluations = collect_evaluations(runs)
    except ValueError as exc:
        raise TextdistillError(str(exc)) from None
    files = build_report(evaluations, out, title=title)
    typer.echo(f"Report: {files.html}\nMarkdown: {files.markdown}")


@app.command(epilog=_examples("textdistill sample --out data/"))
def sample(
    out: Annotated[Path, typer.Option(help="Directory for train.csv, test.csv, unannotated.csv, validation.csv and label_errors.csv.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write the built-in sample dataset of customer-service emails."""
    from textdistill.data.sample import write_sample_dataset

    dataset = write_sample_dataset(out, seed=seed)
    typer.echo(
        f"Wrote {dataset.train}, {dataset.test}, {dataset.unannotated} and {dataset.validation} ({len(dataset.labels)} labels); "
        f"{dataset.label_errors} lists the training annotations planted wrong"
    )


@app.command(
    epilog=_examples(
        "textdistill suggest models/teacher --pool unannotated.csv --out queue.csv",
        "textdistill suggest models/teacher --pool unannotated.csv \\\n"
        "    --strategy diverse --k 100 --transfer transfer/ --out queue.csv",
        "textdistill suggest models/teacher --pool unannotated.csv \\\n"
        "    --strategy rebalance --train train.csv --out queue.csv",
        "textdistill baseline --train queue.csv --id-column id \\\n"
        "    --annotated-column annotated --out models/round2  # after annotating",
    )
)
def suggest(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory (the teacher, or any model).")],
    pool: Annotated[Path, typer.Option(help="Unannotated messages to choose from (CSV, JSONL or Parquet); label columns are ignored.")],
    out: Annotated[Path, typer.Option(help="The queue: a CSV to annotate.")],
    strategy: Annotated[str, typer.Option(help="uncertainty, entropy, diverse, label:NAME, rebalance or random.")] = "uncertainty",
    k: Annotated[int, typer.Option("--k", help="Messages to suggest.")] = 50,
    train: Annotated[Path | None, typer.Option(help="The annotated messages so far: rebalance needs them; their ids are left out of the pool.")] = None,
    transfer: Annotated[Path | None, typer.Option(help="A transfer set of this model: its logits are reused for the pool messages it holds.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of random and of the clustering.")] = 0,
    text_column: TextColumns = None,
    id_column: Annotated[str | None, typer.Option(help="Column with unique message ids (default: as trained).", show_default=False)] = None,
    clean_email: CleanEmailAsTrained = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    quiet: Quiet = False,
) -> None:
    """Rank unannotated messages to annotate next.

    Strategies: uncertainty (the smallest margin between the two most probable labels;
    multi-label: a label nearest its threshold), entropy, diverse (the most uncertain message
    of each of k clusters of uncertain messages), label:NAME (where the model is unsure about
    that label), rebalance (messages least like any annotated one; needs --train), random.
    Near-identical texts are suggested once. The queue holds id, the text columns, an empty
    label column and annotated=false: fill the labels, set annotated to true, and pass it
    (or append its rows to your annotated file) to --train with --annotated-column annotated.
    """
    from textdistill.refine.suggest import check_strategy, suggest as rank, write_queue

    set_quiet(quiet)
    check_strategy(strategy)
    spec = _spec_as_trained(model_dir, text_column=tuple(text_column) if text_column else None, clean_email=clean_email)
    spec = replace(spec, id_column=id_column or spec.id_column, annotated_column=None, skip_bad_rows=skip_bad_rows, encoding=encoding)
    messages = load_messages(pool, spec, annotated=False)
    _report_skipped(messages)
    annotated = load_messages(train, spec).annotated() if train is not None else None
    suggestions = rank(model_dir, messages, strategy=strategy, k=k, annotated=annotated, transfer_dir=transfer, seed=seed)
    write_queue(suggestions, messages, out, spec)
    reused = f", {suggestions.reused:,} scored from the transfer set" if transfer is not None else ""
    typer.echo(
        f"Queue: {len(suggestions.picks)} of {len(messages):,} messages ({strategy}{reused}; "
        f"{suggestions.duplicates_skipped} near-duplicates skipped) in {out}"
    )


Host = Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]


@app.command(epilog=_examples("textdistill serve models/static --port 8000 --threads 2"))
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory.")],
    host: Host = "127.0.0.1",
    port: Port = 8000,
    max_batch: Annotated[int, typer.Option(help="Most messages per model call; concurrent requests share calls.")] = 64,
    max_wait_ms: Annotated[float, typer.Option(help="How long a batch waits for more messages before the model runs (0: none; messages that queue while the model runs are batched anyway).")] = 0.0,
    max_messages: Annotated[int, typer.Option(help="Most messages per request (more: 413).")] = 256,
    max_text_chars: Annotated[int, typer.Option(help="Longest text, in characters (see --oversize).")] = 10_000,
    oversize: Annotated[str, typer.Option(help="A longer text: reject (413) or truncate (cut, flagged truncated in the answer).")] = "reject",
    max_request_mb: Annotated[float, typer.Option(help="Largest request body in MiB (more: 413).")] = 32.0,
    threads: Threads = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Serve a model over HTTP: POST /predict and more.

    POST /predict takes {"messages": [{"id": 1, "text": "..."}]} and answers each message's
    labels (thresholds applied, hierarchy parents included) and their confidences, in order;
    a message without an id gets its position in the request (0, 1, ...). GET /health, GET
    /model, OpenAPI at /docs. SIGTERM or Ctrl+C stops it gracefully: requests in flight are
    answered first. A model with automation thresholds (textdistill automate) returns only
    the labels at or above them; each answer lists the others under withheld.
    """
    from textdistill.serve import ServeSettings, require_serve_extra

    require_serve_extra()
    from textdistill.serve.server import run_server

    settings = ServeSettings(
        max_messages=max_messages,
        max_text_chars=max_text_chars,
        oversize=oversize,  # type: ignore[arg-type]  # checked by ServeSettings
        max_request_mb=max_request_mb,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        threads=threads,
    )
    run_server(model_dir, settings, host=host, port=port, access_log=access_log)


EngineName = Annotated[str, typer.Option("--engine", help="Where the model runs: local (this process) or ray (a pool of Ray actors; pip install 'textdistill[ray]').")]
RayAddress = Annotated[str | None, typer.Option(help="Ray: address of a running cluster (default: RAY_ADDRESS, else a local Ray on this machine's CPUs).")]
Actors = Annotated[int | None, typer.Option(help="Ray: actors, each loading the model once (default: as many as the cluster's GPUs, else CPUs, hold).")]
CpusPerActor = Annotated[float | None, typer.Option(help="Ray: CPUs (and torch threads) per actor (default: 1).")]
GpusPerActor = Annotated[float | None, typer.Option(help="Ray: GPUs per actor (default: 1 when the cluster has GPUs, else 0).")]


@app.command(
    epilog=_examples(
        "textdistill predict models/static --data messages.csv --out predictions/",
        "textdistill predict models/static --data inbox/ \\\n    --data 'archive/2024-*.parquet' --out predictions/",
        "textdistill predict models/teacher --data /shared/big/ \\\n    --out predictions/ --engine ray --ray-address head:6379",
    )
)
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory.")],
    data: Annotated[
        list[str],
        typer.Option(
            metavar="FILE|DIR|GLOB",
            help="Messages: a CSV, TSV, JSONL or Parquet file, a directory of them, or a quoted glob pattern; repeat for more. Label columns are ignored.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Prediction directory (manifest.json + Parquet shards).")],
    shard_size: Annotated[int, typer.Option(help="Messages per Parquet shard (the unit of resumption); each file is cut into shards of this size.")] = 1024,
    batch_size: Annotated[int, typer.Option(help="Messages per model call.")] = 64,
    engine: EngineName = "local",
    ray_address: RayAddress = None,
    actors: Actors = None,
    cpus_per_actor: CpusPerActor = None,
    gpus_per_actor: GpusPerActor = None,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    clean_email: Annotated[bool | None, typer.Option(help="Email clean-up (default: as trained).", show_default=False)] = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    max_text_chars: MaxTextCharsAsTrained = None,
    long_text: LongTextAsTrained = None,
    quiet: Quiet = False,
) -> None:
    """Predict labels for many messages into Parquet shards.

    Files are read one at a time, in the order given (a directory's files and a pattern's
    matches sorted by name), and each is cut into shards: shards/part-FFFFF-CCCCC.parquet is
    chunk C of file F. Each row holds the message's id and text, the predicted label set
    (labels), the model's logits (one per label, in the order of the manifest's labels), and
    the file and 1-based data row it came from; with automation thresholds (textdistill
    automate), labels holds the labels at or above them and withheld the others. Without --id-column, ids are stem:row,
    prefixed with the file's index (2/inbox:17) when there are several files. Interrupted?
    Run the same command again: finished shards are kept, finished files are not read again;
    changed input files are refused. With --engine ray, Ray tasks read the files and a pool
    of Ray actors predicts, on this machine or on a cluster (--ray-address), GPUs included.
    """
    from textdistill.engines import make_engine
    from textdistill.predict import predict_files

    set_quiet(quiet)
    scorer = make_engine(engine, ray_address=ray_address, actors=actors, cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor)
    spec = _spec_as_trained(
        model_dir, text_column=tuple(text_column) if text_column else None, clean_email=clean_email, max_text_chars=max_text_chars, long_text=long_text
    )
    spec = replace(spec, id_column=id_column, skip_bad_rows=skip_bad_rows, encoding=encoding)
    manifest = predict_files(model_dir, data, out, spec=spec, shard_size=shard_size, batch_size=batch_size, engine=scorer)
    counts = manifest["counts"]
    _list_skipped_inputs([file["path"] for file in counts["files"] if file["skipped_rows"]], replace(spec, annotated_column=None), out)
    files = len(counts["files"])
    typer.echo(f"Predictions: {counts['n_messages']:,} messages from {files} file{'s' if files > 1 else ''} in {out}")


@app.command(
    epilog=_examples(
        "textdistill check --train train.csv --out issues.csv",
        "textdistill check --train emails.csv --text-column subject \\\n"
        "    --text-column body --id-column id --model models/teacher \\\n"
        "    --top 50 --out issues.csv  # teacher features",
    )
)
def check(
    train: Annotated[Path, typer.Option(help="Annotated messages (CSV, JSONL or Parquet).")],
    out: Annotated[Path, typer.Option(help="CSV to write: id, text, given_labels, suggested_labels, score, rank, flagged (multi-label: also missing_labels, extra_labels).")],
    model: Annotated[
        str, typer.Option(help="tfidf (the TF-IDF baseline, refit per fold) or a transformer teacher's directory (a logistic-regression head on its frozen features).")
    ] = "tfidf",
    folds: Annotated[int, typer.Option(help="Cross-validation folds: each message is judged by a model trained on the others.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 0,
    top: Annotated[int | None, typer.Option(help="Write the N most suspect messages (default: all that cleanlab flags).", show_default=False)] = None,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    label_column: LabelColumn = "label",
    labels_column: LabelsColumn = "labels",
    label_sep: LabelSep = ";",
    multi_label: MultiLabel = None,
    annotated_column: AnnotatedColumn = None,
    clean_email: CleanEmail = False,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    fold_case: FoldCase = False,
    max_text_chars: MaxTextChars = 1_000_000,
    long_text: LongText = "refuse",
    quiet: Quiet = False,
) -> None:
    """Find annotations that look wrong: Check label, Missed label.

    Each message gets label probabilities from a model that did not see it (cross-validation
    in --folds folds), and cleanlab's confident learning flags the annotations they contradict
    and scores each message's label quality (0 to 1, lower = more suspect). Multi-label data:
    missing_labels and extra_labels say which labels look missed or wrong. The file reads back
    as annotated messages: --id-column id and --labels-column (multi-label) or --label-column
    (single-label) given_labels or suggested_labels.
    """
    from rich import box
    from rich.table import Table

    from textdistill.refine.check import check_labels

    set_quiet(quiet)
    if top is not None and top < 1:
        raise TextdistillError(f"--top is {top}: give a positive number of messages, or leave it out for all that cleanlab flags.")
    spec = _spec(text_column, id_column, label_column, labels_column, label_sep, multi_label, annotated_column, clean_email, skip_bad_rows, encoding, fold_case, max_text_chars, long_text)
    messages = load_messages(train, spec).annotated()
    listing = out.with_name(f"{out.stem}.{SKIPPED_ROWS_FILE}")
    _report_skipped(messages, listing)
    features, model_dir = ("tfidf", None) if model == "tfidf" else ("teacher", Path(model))
    result = check_labels(messages, features=features, model_dir=model_dir, folds=folds, seed=seed)
    for warning in result.warnings:
        console.print(f"{train}: {warning}", style="yellow")
    positions = result.ranked(top)
    result.write_csv(out, positions, label_sep)
    if messages.skipped:
        write_skipped_rows(messages.skipped, listing)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("rank", "id", "text", "given", "suggested", "score"):
        table.add_column(name, justify="right" if name in ("rank", "score") else "left", overflow="fold")
    for i in positions[:10]:
        text = " ".join(result.texts[i].split())
        table.add_row(str(result.rank[i]), result.ids[i], text[:60] + ("…" if len(text) > 60 else ""),
                      label_sep.join(result.given[i]), label_sep.join(result.suggested[i]), f"{result.score[i]:.3f}")  # fmt: skip
    if len(positions):
        stdout_console().print(table)
    typer.echo(f"{result.n_flagged} of {len(result)} annotations look wrong; wrote {len(positions)} to {out}")


@app.command(
    epilog=_examples(
        "textdistill automate models/teacher --validation validation.csv",
        "textdistill automate models/static --validation validation.csv \\\n"
        "    --target-precision 0.9 --label-precision 'Billing=0.99'",
    )
)
def automate(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory; automation.json is written into it.")],
    validation: Annotated[Path, typer.Option(help="Annotated validation messages the model was not trained on.")],
    target_precision: Annotated[float, typer.Option(help="Precision each label must reach on --validation to be automated.")] = 0.95,
    label_precision: Annotated[
        list[str] | None, typer.Option(metavar="LABEL=PRECISION", help="A label's own target, e.g. 'Billing=0.99'; repeat for more.")
    ] = None,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    label_column: Annotated[str | None, typer.Option(help="Single-label column (default: as trained).")] = None,
    labels_column: Annotated[str | None, typer.Option(help="Multi-label column (default: as trained).")] = None,
    label_sep: Annotated[str | None, typer.Option(help="Separator between labels (default: as trained).")] = None,
    clean_email: Annotated[bool | None, typer.Option(help="Email clean-up (default: as trained).", show_default=False)] = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    max_text_chars: MaxTextCharsAsTrained = None,
    long_text: LongTextAsTrained = None,
    quiet: Quiet = False,
) -> None:
    """Per-label thresholds that reach a target precision.

    For each label, the lowest confidence at which the model's predictions of it on
    --validation reach the target precision (and the recall left there). predict and serve
    then return a label only at or above its threshold and say which labels they withheld;
    evaluate measures the thresholds on test data. A label that cannot reach its target, or
    has fewer than 5 validation messages, is never automated: it is always withheld. Run it
    again to choose anew; delete automation.json to predict without thresholds.
    """
    from rich import box
    from rich.table import Table

    from textdistill.models.automation import automate_model, parse_label_precision

    set_quiet(quiet)
    targets = parse_label_precision(label_precision or [])
    messages = _annotated_as_trained(
        model_dir, validation, text_column=text_column, label_column=label_column, labels_column=labels_column, label_sep=label_sep,
        clean_email=clean_email, max_text_chars=max_text_chars, long_text=long_text, id_column=id_column, skip_bad_rows=skip_bad_rows,
        encoding=encoding,
    )  # fmt: skip
    _report_skipped(messages)
    automation = automate_model(model_dir, messages, target_precision=target_precision, label_precision=targets, skip_bad_rows=skip_bad_rows)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("label", "target", "threshold", "precision", "recall", "support", "AP", "reached"):
        table.add_column(name, justify="left" if name == "label" else "right", overflow="fold")
    for entry in automation.labels:
        cells = (entry.threshold, entry.precision, entry.recall)
        table.add_row(entry.label, f"{entry.target_precision:g}", *("-" if v is None else f"{v:.3f}" for v in cells), str(entry.support),
                      "-" if entry.average_precision is None else f"{entry.average_precision:.3f}", "yes" if entry.reached else "no")  # fmt: skip
    stdout_console().print(table)
    for entry in automation.labels:
        if not entry.reached:
            typer.echo(f"  {entry.label}: not automated, {entry.why_not}")
    own = f" ({len(targets)} with a target of their own)" if targets else ""
    typer.echo(
        f"{automation.n_reached} of {len(automation.labels)} labels reach {target_precision:g}{own}"
        + ("; the others are always withheld" if automation.n_reached < len(automation.labels) else "")
        + f". Thresholds: {model_dir / 'automation.json'}"
    )


@app.command(
    epilog=_examples(
        "textdistill reject models/teacher --train train.csv --validation val.csv",
        "textdistill reject models/static --train train.csv --validation val.csv \\\n"
        "    --max-in-scope-loss 0.02 --out-of-scope not_ours.csv --score auto",
    )
)
def reject(
    model_dir: Annotated[Path, typer.Argument(help="A saved single-label model directory; out_of_scope.json is written into it.")],
    train: Annotated[Path, typer.Option(help="Annotated messages the model was trained on (fits mahalanobis and knn).")],
    validation: Annotated[Path, typer.Option(help="Annotated validation messages the model was not trained on (sets the threshold).")],
    max_in_scope_loss: Annotated[
        float, typer.Option(help="Share of validation messages the model gets right that the threshold may reject (0.01: one point of accuracy).")
    ] = 0.01,
    score: Annotated[str, typer.Option(help="msp, energy, maxlogit, mahalanobis, knn, or auto (msp; with --out-of-scope, the best on them).")] = "auto",
    out_of_scope: Annotated[
        Path | None, typer.Option("--out-of-scope", help="Messages known to match none of the labels (text column only): chooses the score, measures it.")
    ] = None,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    label_column: Annotated[str | None, typer.Option(help="Single-label column (default: as trained).")] = None,
    annotated_column: Annotated[str | None, typer.Option(help="--train column flagging annotated rows (others are ignored); default: all are.")] = None,
    clean_email: Annotated[bool | None, typer.Option(help="Email clean-up (default: as trained).", show_default=False)] = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    max_text_chars: MaxTextCharsAsTrained = None,
    long_text: LongTextAsTrained = None,
    quiet: Quiet = False,
) -> None:
    """A reject option for messages that match none of the labels.

    Each message gets an out-of-scope score from the model's logits (msp by default; see
    --score); above a threshold, predict and serve return no label and say why. The threshold
    is the lowest that rejects no more of the --validation messages the model gets right than
    --max-in-scope-loss allows. Works for every single-label model and its ONNX copies (compress carries
    it); fit it on each model you ship. Delete out_of_scope.json to predict without it.
    """
    from textdistill.models.out_of_scope import OUT_OF_SCOPE_FILE, fit_model

    set_quiet(quiet)
    reading = dict(
        text_column=text_column, label_column=label_column, clean_email=clean_email, max_text_chars=max_text_chars, long_text=long_text,
        id_column=id_column, skip_bad_rows=skip_bad_rows, encoding=encoding,
    )  # fmt: skip
    train_messages = _annotated_as_trained(model_dir, train, annotated_column=annotated_column, **reading)
    validation_messages = _annotated_as_trained(model_dir, validation, **reading)
    examples = None
    if out_of_scope is not None:
        spec = replace(_spec_as_trained(model_dir, text_column=tuple(text_column) if text_column else None), annotated_column=None, skip_bad_rows=skip_bad_rows, encoding=encoding)
        examples = load_messages(out_of_scope, spec, annotated=False)
        _report_skipped(examples)
    for messages in (train_messages, validation_messages):
        _report_skipped(messages)
    found = fit_model(
        model_dir, train_messages, validation_messages, score=score, max_in_scope_loss=max_in_scope_loss,
        examples=None if examples is None else examples.texts, skip_bad_rows=skip_bad_rows,
    )  # fmt: skip
    v = found.validation
    typer.echo(
        f"Score {found.score}, threshold {found.threshold:.4g}: it rejects {v['rejected_share']:.1%} of the {v['n']:,} validation messages; "
        f"those it had right cost {v['in_scope_loss'] * 100:.1f} points of accuracy ({v['accuracy']:.3f} -> {v['accuracy_with_rejection']:.3f}, "
        f"counting a rejected message as wrong)."
    )
    if found.examples:
        typer.echo(f"Known out-of-scope messages: {found.examples['rejected_share']:.1%} of {found.examples['n']:,} rejected, AUROC {found.examples['auroc']:.3f}.")
        for name, row in found.examples["compared"].items():
            typer.echo(f"  {name:12} rejects {row['rejected_share']:6.1%}, AUROC {row['auroc']:.3f}")
    typer.echo(f"Reject option: {model_dir / OUT_OF_SCOPE_FILE}")


@app.command(
    epilog=_examples(
        "textdistill drift models/teacher --reference transfer/ \\\n    --current this-week.csv --out drift.json",
        "textdistill drift models/static --reference train.csv \\\n    --current inbox.parquet --text-column subject --text-column body",
    )
)
def drift(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory.")],
    reference: Annotated[
        Path, typer.Option(help="What the model was made for: a transfer set of this model (its logits are reused) or a messages file (CSV, JSONL or Parquet).")
    ],
    current: Annotated[Path, typer.Option(help="The messages to compare with it (CSV, JSONL or Parquet); label columns are ignored.")],
    out: Annotated[Path | None, typer.Option(help="Where to write every number (JSON).")] = None,
    alpha: Annotated[float, typer.Option(help="How often traffic like the reference may be called drift; each of the three measures is tested at a third of it.")] = drift_settings.ALPHA,
    min_change: Annotated[float, typer.Option(help="A label or the coverage must move by at least this share of messages (0.02: 2 points) ...")] = drift_settings.MIN_CHANGE,
    min_relative_change: Annotated[float, typer.Option(help="... or a label by this share of its reference share (0.5: half).")] = drift_settings.MIN_RELATIVE_CHANGE,
    max_embedded: Annotated[int, typer.Option(help="Messages of each side embedded for the domain classifier, drawn at random.")] = drift_settings.MAX_EMBEDDED,
    seed: Annotated[int, typer.Option(help="Seed of that draw and of the classifier's folds.")] = 0,
    text_column: TextColumns = None,
    id_column: IdColumn = None,
    clean_email: Annotated[bool | None, typer.Option(help="Email clean-up (default: as trained).", show_default=False)] = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    max_text_chars: MaxTextCharsAsTrained = None,
    long_text: LongTextAsTrained = None,
    quiet: Quiet = False,
) -> None:
    """Has the traffic changed since training?

    Compares the --current messages with the --reference ones on three measures: the shares of the labels the model predicts (per label, Fisher's exact
    test, Holm-corrected; a label rose or fell when it is significant and moved by
    --min-change or --min-relative-change), coverage (the share of confident predictions: at
    the automation thresholds of textdistill automate when the model has them, else a top
    probability of 0.5), and the messages' embeddings: a domain classifier (held-out
    AUROC, 0.5: indistinguishable; it fires at 0.525) and a maximum mean discrepancy
    permutation test. Prints the verdict, drift or no drift,
    with the reasons; exits 0 either way. Files are read as the model was trained unless
    the options here say otherwise.
    """
    import json

    from rich import box
    from rich.table import Table

    from textdistill.refine.drift import format_p, measure_drift

    set_quiet(quiet)
    spec = _spec_as_trained(
        model_dir, text_column=tuple(text_column) if text_column else None, clean_email=clean_email, max_text_chars=max_text_chars, long_text=long_text
    )
    spec = replace(spec, id_column=id_column, annotated_column=None, skip_bad_rows=skip_bad_rows, encoding=encoding)
    listing = out.with_name(f"{out.stem}.{SKIPPED_ROWS_FILE}") if out is not None else None
    sets = [load_messages(path, spec, annotated=False) for path in (current, *(() if reference.is_dir() else (reference,)))]
    for messages in sets:
        _report_skipped(messages, listing)
    result = measure_drift(
        model_dir, sets[0], reference=sets[1] if len(sets) > 1 else None, transfer_dir=reference if reference.is_dir() else None,
        alpha=alpha, min_change=min_change, min_relative_change=min_relative_change, max_embedded=max_embedded, seed=seed,
    )  # fmt: skip
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if any(messages.skipped for messages in sets):
            write_skipped_rows([row for messages in sets for row in messages.skipped], listing)
    shift = result.label_shift
    moved = sorted((c for c in shift.labels if c.direction), key=lambda c: -abs(c.change))
    shown = moved or sorted(shift.labels, key=lambda c: -abs(c.change))[:5]
    typer.echo(f"Labels that rose or fell ({len(moved)}):" if moved else "No label rose or fell; the largest changes:")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("label", "reference", "current", "points", "p (Holm)", ""):
        table.add_column(name, justify="left" if name in ("label", "") else "right", overflow="fold")
    for c in shown[:20]:
        table.add_row(c.label, f"{c.reference_share:.1%}", f"{c.current_share:.1%}", f"{100 * c.change:+.1f}", f"{c.p_value:.2g}", c.direction or "")
    stdout_console().print(table)
    if len(shown) > 20:
        typer.echo(f"  ... and {len(shown) - 20} more (all of them: --out)")
    if shift.overall is not None:
        typer.echo(f"Label distribution: chi-square {shift.overall['statistic']:.1f} on {shift.overall['dof']} degrees of freedom, {format_p(shift.overall['p_value'])}")
    coverage, embeddings = result.coverage, result.embeddings
    typer.echo(f"Coverage: {coverage.reference:.1%} -> {coverage.current:.1%} ({100 * coverage.change:+.1f} points, {format_p(coverage.p_value)}; {coverage.rule})")
    typer.echo(
        f"Embeddings ({embeddings.embedding}, {embeddings.n_reference:,} + {embeddings.n_current:,} messages): "
        f"domain classifier AUROC {embeddings.auroc:.3f}, {format_p(embeddings.auroc_p_value)}; MMD² {embeddings.mmd:.2g}, permutation {format_p(embeddings.mmd_p_value)}"
    )
    reused = f", {result.reused:,} scored from the transfer set" if result.reused else ""
    typer.echo(f"Reference {result.n_reference:,} messages{reused}; current {result.n_current:,}.")
    typer.echo(f"Verdict: {result.verdict.upper()}" + "".join(f"\n  - {reason}" for reason in result.reasons) + (f"\nResults: {out}" if out else ""))


@app.command(
    epilog=_examples(
        "textdistill rate models/teacher --train train.csv --pool unannotated.csv \\\n    --validation validation.csv --json rating.json",
        "textdistill rate models/teacher --train train.csv --pool unannotated.csv \\\n    --transfer transfer/  # reuse the transfer set's logits for the pool",
    )
)
def rate(
    model_dir: Annotated[Path, typer.Argument(help="A saved model directory (the teacher, or any model).")],
    train: Annotated[Path, typer.Option(help="The annotated messages (for balance and labels with few examples).")],
    pool: Annotated[Path, typer.Option(help="Unannotated messages, as the model will see them (CSV, JSONL or Parquet); label columns are ignored.")],
    validation: Annotated[Path | None, typer.Option(help="Annotated messages the model was not trained on, for average precision (default: the APs saved by textdistill automate).")] = None,
    transfer: Annotated[Path | None, typer.Option(help="A transfer set of this model: its logits are reused for the pool messages it holds.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the rating, its factors and clusters here (JSON).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subsamples, folds and clustering.")] = 0,
    text_column: TextColumns = None,
    id_column: Annotated[str | None, typer.Option(help="Column with unique message ids (default: as trained).", show_default=False)] = None,
    label_column: Annotated[str | None, typer.Option(help="Single-label column (default: as trained).")] = None,
    labels_column: Annotated[str | None, typer.Option(help="Multi-label column (default: as trained).")] = None,
    label_sep: Annotated[str | None, typer.Option(help="Separator between labels (default: as trained).")] = None,
    clean_email: CleanEmailAsTrained = None,
    skip_bad_rows: SkipBadRows = False,
    encoding: Encoding = "utf-8",
    quiet: Quiet = False,
) -> None:
    """Rate a model by average precision, coverage and balance.

    Coverage: the share of --pool messages that get a label at or above its automation
    threshold (textdistill automate; without thresholds, a predicted label at confidence 0.5 or
    more). Balance: how well a classifier tells --train from --pool messages on the model's
    message embeddings (cross-validated AUROC, 0.5: representative), and the pool's clusters
    the annotated messages under-cover (textdistill suggest --strategy rebalance targets them).
    One score 0-100 combines them with the mean and worst labels' average precision and the
    labels with fewer than 5 annotated messages. Pool messages whose id is in --train are left
    out.
    """
    from rich import box
    from rich.table import Table

    from textdistill.evaluate.evaluation import write_evaluation
    from textdistill.refine.rating import POOR, rate as rate_model

    set_quiet(quiet)
    spec = _spec_as_trained(model_dir, text_column=tuple(text_column) if text_column else None, clean_email=clean_email)
    spec = replace(spec, id_column=id_column or spec.id_column, annotated_column=None, skip_bad_rows=skip_bad_rows, encoding=encoding)
    columns = dict(text_column=text_column, label_column=label_column, labels_column=labels_column, label_sep=label_sep, clean_email=clean_email)
    read = dict(id_column=spec.id_column, skip_bad_rows=skip_bad_rows, encoding=encoding, **columns)  # ids as the pool's: annotated ones leave the pool
    annotated = _annotated_as_trained(model_dir, train, **read)
    _report_skipped(annotated)
    held_out = _annotated_as_trained(model_dir, validation, **read) if validation else None
    if held_out is not None:
        _report_skipped(held_out)
    messages = load_messages(pool, spec, annotated=False)
    _report_skipped(messages)
    rating = rate_model(model_dir, messages, annotated=annotated, validation=held_out, transfer_dir=transfer, skip_bad_rows=skip_bad_rows, seed=seed)
    out = stdout_console()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in ("factor", "value", "score", "status"):
        table.add_column(name, justify="right" if name in ("value", "score") else "left")
    for factor in rating["factors"]:
        score = "-" if factor["score"] is None else f"{factor['score']:.0f}"
        table.add_row(factor["name"], factor["display"], score, Text(factor["status"], style="red" if factor["status"] == POOR else ""))
    out.print(Text(f"Rating: {rating['score'] if rating['score'] is not None else '-'}/100 ({rating['status']})", style="bold"))
    out.print(table)
    for factor in rating["factors"]:
        typer.echo(f"  {factor['name']}: {factor['detail']}")
    for warning in rating["warnings"]:
        console.print(f"Warning: {warning}", style="yellow", highlight=False)
    under = [c for c in (rating["balance"] or {}).get("clusters", []) if c["under_covered"]]
    if under:
        typer.echo("Pool clusters the annotated messages under-cover (pool share, annotated share, mostly predicted as, examples):")
        for cluster in under[:5]:
            typer.echo(f"  {cluster['pool_share']:.1%} of the pool, {cluster['annotated_share']:.1%} of the annotated, mostly {cluster['predicted_mostly']}:")
            for example in cluster["examples"]:
                typer.echo(f"    - {example}")
    advice = [f"{f['name']}: {f['advice']}" for f in rating["factors"] if f["advice"]]
    if advice:
        typer.echo("What to do:")
        for line in advice:
            typer.echo(f"  {line}")
    if json_path is not None:
        write_evaluation(rating, json_path)
        typer.echo(f"Results: {json_path}")


def main() -> None:
    """Entry point: people get their error message, not a traceback."""
    try:
        app()
    except TextdistillError as error:
        console.print(Text.assemble(("Error:", "bold red"), f" {error}"))
        sys.exit(2)
