"""``textdistill run CONFIG.toml``: the configured stages, in order, into one run directory.

Run directory layout::

    RUN_DIR/config.toml            the configuration as run
    RUN_DIR/data/summary.json      message counts, label counts, skipped rows and why
    RUN_DIR/data/split.json        ids of the train and validation messages
    RUN_DIR/models/NAME/           every trained model (manifest.json + weights): baseline, teacher
    RUN_DIR/transfer/              the teacher's logits on train + unannotated (+ augmented) messages
    RUN_DIR/models/STUDENT/        every student distilled from the teacher ([[students]] tables)
    RUN_DIR/models/NAME-int8/      ONNX copies of the models named in [compress] (NAME-onnx for fp32)
    RUN_DIR/evaluations/NAME.json  quality and cost of every model on the test set
    RUN_DIR/report/                report.md, report.html, quality_vs_latency.svg
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.text import Text

from textdistill.compress import INT8_TOLERANCE
from textdistill.console import stderr_console
from textdistill.data.messages import DataSpec, MessageSet, describe_cleaning, fold_to, load_messages, require_two_classes, text_cleaning, write_skipped_rows
from textdistill.data.split import train_validation_split
from textdistill.distill.recipe import StudentSpec
from textdistill.errors import DataError, TextdistillError
from textdistill.evaluate.evaluation import CostSettings, evaluate_model, quality_summary, write_evaluation
from textdistill.evaluate.report import build_report, collect_evaluations
from textdistill.models.baseline import BaselineConfig
from textdistill.models.encoder_config import EncoderConfig
from textdistill.models.thresholds import THRESHOLD_MODES
from textdistill.stages import DEFAULT_STAGES, STAGE_ORDER
from textdistill.training.arguments import TrainingArguments
from textdistill.training.recipes import train_baseline, train_teacher

_REQUIRES = {"split": "load", "baseline": "split", "teach": "split", "label": "teach", "distill": "label", "evaluate": "load", "suggest": "split", "validate": "split"}

console = stderr_console()


@dataclass(frozen=True)
class DataConfig:
    """Where the messages are; paths are relative to the config file."""

    train: Path
    test: Path
    unannotated: Path | None = None
    validation: Path | None = None
    validation_fraction: float = 0.1
    spec: DataSpec = field(default_factory=DataSpec)


@dataclass(frozen=True)
class TransferConfig:
    """What the teacher labels: train texts, the unannotated pool, and augmentations of them."""

    include_train: bool = True
    augment: tuple[str, ...] | list[str] = ()
    augment_factor: int = 1
    min_confidence: float | None = None
    max_entropy: float | None = None
    top_k: int | None = None


COMPRESSED_SUFFIX = {"fp32": "onnx", "int8": "int8"}


@dataclass(frozen=True)
class CompressConfig:
    """Stage "compress": ONNX copies of trained models, saved beside them and evaluated with them."""

    models: tuple[str, ...] | list[str] = ()  # names under models/; empty: every [[students]] model
    precisions: tuple[str, ...] | list[str] = ("int8",)  # "fp32" -> models/NAME-onnx, "int8" -> models/NAME-int8
    int8_tolerance: float = INT8_TOLERANCE  # largest probability change on the probe texts an int8 copy may make

    def __post_init__(self) -> None:
        unknown = set(self.precisions) - set(COMPRESSED_SUFFIX)
        if unknown or not self.precisions:
            raise ValueError(f"[compress] precisions must be a non-empty list of {list(COMPRESSED_SUFFIX)}, not {list(self.precisions)}")
        # checked here, not hours later in the compress stage; also refuses NaN
        if isinstance(self.int8_tolerance, bool) or not isinstance(self.int8_tolerance, int | float) or not 0 < self.int8_tolerance <= 1:
            raise ValueError(f"[compress] int8_tolerance is a largest probability change, above 0 and at most 1, not {self.int8_tolerance!r}")


@dataclass(frozen=True)
class ValidateConfig:
    """Stage "validate": each model's automation thresholds (``textdistill automate``) and, for
    single-label data, its reject option (``textdistill reject``), chosen on the validation messages."""

    target_precision: float = 0.95
    max_in_scope_loss: float = 0.01
    out_of_scope: str = "auto"  # a score (msp, energy, maxlogit, mahalanobis, knn), auto, or "off": no reject option

    def __post_init__(self) -> None:
        from textdistill.models.out_of_scope import SCORES

        if isinstance(self.target_precision, bool) or not isinstance(self.target_precision, int | float) or not 0 < self.target_precision <= 1:
            raise ValueError(f"[validate] target_precision is a precision above 0 and at most 1, not {self.target_precision!r}")
        if isinstance(self.max_in_scope_loss, bool) or not isinstance(self.max_in_scope_loss, int | float) or not 0 <= self.max_in_scope_loss < 1:
            raise ValueError(f"[validate] max_in_scope_loss is a share of validation messages, at least 0 and below 1, not {self.max_in_scope_loss!r}")
        if self.out_of_scope not in (*SCORES, "auto", "off"):
            raise ValueError(f"[validate] out_of_scope = {self.out_of_scope!r} is unknown; choose one of: {', '.join(SCORES)}, auto, off")


@dataclass(frozen=True)
class SuggestConfig:
    """Stage "suggest": a queue of unannotated messages to annotate next (see ``textdistill suggest``)."""

    strategy: str = "diverse"
    k: int = 50
    model: str | None = None  # a name under models/; None: the teacher, else the baseline
    check_folds: int = 5  # the label check of the training annotations (textdistill check); 0: none

    def __post_init__(self) -> None:
        from textdistill.refine.suggest import check_strategy

        try:
            check_strategy(self.strategy)
        except TextdistillError as error:
            raise ValueError(f"[suggest] {error}") from None
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"[suggest] k is the number of messages to suggest, a whole number of at least 1, not {self.k!r}")
        if isinstance(self.check_folds, bool) or not isinstance(self.check_folds, int) or self.check_folds == 1 or self.check_folds < 0:
            raise ValueError(f"[suggest] check_folds is 0 (no label check) or the number of cross-validation folds, 2 or more, not {self.check_folds!r}")


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig
    stages: tuple[str, ...] = STAGE_ORDER
    seed: int = 0
    threshold_mode: str = "global"
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    teacher: EncoderConfig = field(default_factory=EncoderConfig)
    teacher_training: TrainingArguments = field(default_factory=TrainingArguments)
    transfer: TransferConfig = field(default_factory=lambda: TransferConfig())
    students: tuple[tuple[str, StudentSpec], ...] = ()  # (name, spec): saved to models/NAME
    compress: CompressConfig = field(default_factory=CompressConfig)
    suggest: SuggestConfig = field(default_factory=SuggestConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    cost: CostSettings = field(default_factory=CostSettings)
    positive_label: str | None = None  # two-class data: the positive class (None: the rarer one)
    report_title: str = "textdistill report"

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TextdistillError(f"{path}: config file not found. Write one (see `textdistill run --help`).") from None
        except tomllib.TOMLDecodeError as exc:
            raise TextdistillError(f"{path}: not valid TOML ({exc}).") from None
        try:
            return cls.from_dict(raw, base=path.parent)
        except (TypeError, ValueError, KeyError) as exc:
            raise TextdistillError(f"{path}: {exc}") from None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base: Path = Path(".")) -> RunConfig:
        raw = {section: dict(values) if isinstance(values, dict) else values for section, values in raw.items()}
        unknown = set(raw) - {"run", "data", "baseline", "teacher", "transfer", "students", "compress", "validate", "evaluate", "report", "suggest"}
        if unknown:
            raise ValueError(f"unknown sections: {', '.join(sorted(unknown))}")
        run = raw.get("run", {})
        data = raw.get("data", {})
        if "train" not in data or "test" not in data:
            raise ValueError("[data] needs `train` and `test` files")
        files = {key: base / data.pop(key) for key in ("train", "test", "unannotated", "validation") if key in data}
        fraction = data.pop("validation_fraction", 0.1)
        stages = tuple(run.get("stages", DEFAULT_STAGES))
        teacher = raw.get("teacher", {})
        teacher_training = {k: teacher.pop(k) for k in list(teacher) if k in TrainingArguments.__dataclass_fields__}
        _check_stages(stages)
        students = _students(raw.get("students", []))
        compress = _strict(CompressConfig, raw.get("compress", {}))
        evaluate = dict(raw.get("evaluate", {}))
        positive_label = evaluate.pop("positive_label", None)
        if "compress" in stages and not (compress.models or students):
            raise ValueError("stage 'compress' has nothing to compress: name models in [compress] models = [...] or add [[students]] tables")
        spec = DataSpec.from_dict(data)
        _check_label_columns(spec, data)
        threshold_mode = run.get("threshold_mode", "global")
        if threshold_mode not in THRESHOLD_MODES:
            raise ValueError(f"[run] threshold_mode = {threshold_mode!r} is unknown; choose one of: {', '.join(THRESHOLD_MODES)}")
        return cls(
            data=DataConfig(**files, validation_fraction=fraction, spec=spec),
            stages=stages,
            seed=int(run.get("seed", 0)),
            threshold_mode=threshold_mode,
            baseline=BaselineConfig.from_dict(raw.get("baseline", {})),
            teacher=_strict(EncoderConfig, teacher),
            teacher_training=_strict(TrainingArguments, {"seed": int(run.get("seed", 0)), **teacher_training}),
            transfer=_strict(TransferConfig, raw.get("transfer", {})),
            students=students,
            compress=compress,
            suggest=_strict(SuggestConfig, raw.get("suggest", {})),
            validate=_strict(ValidateConfig, raw.get("validate", {})),
            cost=CostSettings(**evaluate),
            positive_label=positive_label,
            report_title=raw.get("report", {}).get("title", "textdistill report"),
        )


def _students(tables: list[dict[str, Any]]) -> tuple[tuple[str, StudentSpec], ...]:
    """``[[students]]`` tables: ``kind``, an optional ``name`` (default: the kind), ``losses``,
    ``training`` and the kind's own settings."""
    students = []
    for table in tables:
        table = dict(table)
        name = str(table.pop("name", table.get("kind")))
        if name in {"baseline", "teacher"} or name in {n for n, _ in students}:
            raise ValueError(f"student name {name!r} is taken; give each [[students]] table its own name")
        try:
            students.append((name, StudentSpec.from_dict(table)))
        except TextdistillError as exc:
            raise ValueError(f"[[students]] {name}: {exc}") from None
    return tuple(students)


def _check_label_columns(spec: DataSpec, written: dict[str, Any]) -> None:
    """One column cannot be both the single- and the multi-label column unless multi_label says which."""
    if spec.multi_label is not None or spec.label_column != spec.labels_column:
        return
    column = spec.label_column
    keys = [f"{key} = {column!r}" if key in written else f"{key} (by default {column!r})" for key in ("label_column", "labels_column")]
    raise ValueError(
        f"[data] {keys[0]} and {keys[1]} name the same column, so the label mode is unclear. "
        f"Single-label data: label_column = {column!r} and no labels_column; multi-label data: labels_column = {column!r} and multi_label = true."
    )


# The data options' command-line flags, which data errors name in their hints, as [data] keys.
_DATA_KEYS = {
    "--text-column": "text_columns",
    "--id-column": "id_column",
    "--label-column": "label_column",
    "--labels-column": "labels_column",
    "--label-sep": "label_sep",
    "--annotated-column": "annotated_column",
    "--unannotated": "unannotated",
    "--validation": "validation",
    "--encoding": "encoding",
    "--clean-email": "clean_email = true",
    "--skip-bad-rows": "skip_bad_rows = true",
    "--multi-label": "multi_label = true",
    "--single-label": "multi_label = false",
}


def _in_config_terms(error: DataError, config_path: Path | None) -> DataError:
    """``error`` with the flags in its hint replaced by the [data] keys a `run` user writes instead."""
    if not error.hint:
        return error

    def key(match: re.Match) -> str:
        name = _DATA_KEYS.get(match[2])
        return match[0] if name is None else ("set " if match[1] else "") + f"[data] {name}"

    hint, replaced = re.subn(r"(pass )?(--[a-z][a-z-]*)", key, error.hint)
    if replaced and config_path is not None:
        hint += f" (in {config_path})"
    return DataError(error.problem, file=error.file, row=error.row, column=error.column, hint=hint)


def _check_stages(stages: tuple[str, ...]) -> None:
    unknown = [s for s in stages if s not in STAGE_ORDER]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; the stages are {list(STAGE_ORDER)}")
    if list(stages) != sorted(stages, key=STAGE_ORDER.index):
        raise ValueError(f"stages must run in the order {list(STAGE_ORDER)}")
    for stage in stages:
        needed = _REQUIRES.get(stage)
        if needed and needed not in stages:
            raise ValueError(f"stage {stage!r} needs stage {needed!r} before it")


@dataclass
class RunState:
    """What the stages hand on to each other."""

    run_dir: Path
    train: MessageSet | None = None
    test: MessageSet | None = None
    unannotated: MessageSet | None = None
    validation: MessageSet | None = None
    report_html: Path | None = None
    evaluations: list[dict] | None = None  # what the report was built from (stage "report")
    queue: Path | None = None  # stage "suggest": the annotation queue (CSV)
    suggestions: Any = None  # and its picks (refine.suggest.Suggestions)
    label_issues: Path | None = None  # stage "suggest": the training annotations that look wrong (CSV)
    label_check: Any = None  # and the whole check (refine.check.LabelCheck)


class Pipeline:
    """Runs the configured stages; each stage is one method named after it."""

    def __init__(self, config: RunConfig, run_dir: str | Path, config_path: Path | None = None) -> None:
        self.config = config
        self.state = RunState(Path(run_dir))
        self.config_path = config_path

    def run(self) -> RunState:
        self.state.run_dir.mkdir(parents=True, exist_ok=True)
        if self.config_path is not None:
            shutil.copyfile(self.config_path, self.state.run_dir / "config.toml")
        stages: dict[str, Callable[[], None]] = {name: getattr(self, f"stage_{name}") for name in STAGE_ORDER}
        for name in self.config.stages:
            console.rule(Text(name, style="bold"))
            try:
                stages[name]()
            except DataError as error:
                raise _in_config_terms(error, self.config_path) from error
        return self.state

    # -- stages ----------------------------------------------------------------------------
    def stage_load(self) -> None:
        data, spec = self.config.data, self.config.data.spec
        loaded = load_messages(data.train, spec)
        self.state.train = loaded.annotated()
        require_two_classes(self.state.train)
        # its skipped rows and warnings are already counted with the training messages
        pool = [replace(loaded.unannotated(), skipped=[], warnings=[])] if spec.annotated_column else []
        if data.unannotated:
            pool.append(load_messages(data.unannotated, spec, annotated=False))
        self.state.unannotated = _concat(pool) if pool else None
        # The test file is read as the training data is: same label mode.
        test_spec = replace(spec, multi_label=loaded.multi_label)
        self.state.test = load_messages(data.test, test_spec, held_out=True).annotated()
        if data.validation:
            self.state.validation = load_messages(data.validation, test_spec, held_out=True).annotated()
        if spec.fold_case:  # held-out labels take the training data's spelling
            trained = {label for labels in self.state.train.labels for label in labels}
            self.state.test = fold_to(self.state.test, trained)
            if self.state.validation is not None:
                self.state.validation = fold_to(self.state.validation, trained)
        sets = {
            name: messages
            for name, messages in (
                ("train", self.state.train),
                ("validation", self.state.validation),
                ("test", self.state.test),
                ("unannotated", self.state.unannotated),
            )
            if messages is not None
        }
        summary = {name: _summary(messages) for name, messages in sets.items()}
        skipped = list(dict.fromkeys(row for messages in sets.values() for row in messages.skipped))
        if skipped:
            write_skipped_rows(skipped, self.state.run_dir / "data" / "skipped_rows.csv")
        _write_json(self.state.run_dir / "data" / "summary.json", summary)
        for name, info in summary.items():
            note = (f", {info['skipped_rows']} bad rows skipped", "yellow") if info["skipped_rows"] else ""
            console.print(Text.assemble(f"{name}: {info['n_messages']} messages", note))
            if info["text_cleaning"]:
                console.print(f"  {describe_cleaning(info['text_cleaning'])}")
            for warning in info["warnings"]:
                console.print(f"  {warning}", style="yellow")
        if skipped:
            console.print(f"  every skipped row is listed in {self.state.run_dir / 'data' / 'skipped_rows.csv'}")

    def stage_split(self) -> None:
        state = self.state
        if state.validation is None:
            state.train, state.validation = train_validation_split(
                state.train, self.config.data.validation_fraction, self.config.seed
            )
        _write_json(state.run_dir / "data" / "split.json", {"train": state.train.ids, "validation": state.validation.ids})
        console.print(f"train: {len(state.train)}, validation: {len(state.validation)}")

    def stage_baseline(self) -> None:
        directory = self.state.run_dir / "models" / "baseline"
        train_baseline(self.config.baseline, self.state.train, self.state.validation, directory, spec=self.config.data.spec, threshold_mode=self.config.threshold_mode)
        console.print(f"baseline saved to {directory}")

    def stage_teach(self) -> None:
        from textdistill.models.transformer import TransformerClassifier

        directory = self.state.run_dir / "models" / "teacher"
        teacher = TransformerClassifier(self.config.teacher, training=self.config.teacher_training)
        train_teacher(teacher, self.state.train, self.state.validation, directory, spec=self.config.data.spec, threshold_mode=self.config.threshold_mode)
        console.print(f"teacher ({self.config.teacher.model}, {self.config.teacher.method}) saved to {directory}")

    def stage_label(self) -> None:
        from textdistill.transfer import AugmentConfig, label_messages

        settings = self.config.transfer
        parts = [self.state.train] if settings.include_train else []
        parts += [self.state.unannotated] if self.state.unannotated is not None else []
        if not parts:
            raise TextdistillError("nothing to label: give [data] unannotated messages or set [transfer] include_train = true.")
        pool = _concat(parts)
        augment = AugmentConfig(methods=tuple(settings.augment), factor=settings.augment_factor, seed=self.config.seed) if settings.augment else None
        transfer = label_messages(
            self.state.run_dir / "models" / "teacher",
            pool,
            self.state.run_dir / "transfer",
            augment=augment,
            min_confidence=settings.min_confidence,
            max_entropy=settings.max_entropy,
            top_k=settings.top_k,
        )
        counts = transfer.manifest["counts"]
        console.print(f"transfer set: {counts['written']} messages ({counts['augmented']} augmented, {counts['filtered_out_total']} filtered out)")

    def stage_distill(self) -> None:
        from textdistill.distill.recipe import distill

        if not self.config.students:
            raise TextdistillError("the distill stage has no students: add [[students]] tables (kind = static, bilstm or transformer).")
        models = self.state.run_dir / "models"
        spec = self.config.data.spec
        for name, student in self.config.students:
            console.print(f"distilling {name} ({student.kind})")
            model = distill(
                student,
                teachers=[models / "teacher"],
                transfer_dirs=[self.state.run_dir / "transfer"],
                out_dir=models / name,
                train=self.state.train,
                validation=self.state.validation,
                threshold_mode=self.config.threshold_mode,
                spec_data={**asdict(spec), "text_columns": list(spec.text_columns)},
            )
            console.print(f"{name}: {model.n_params:,} parameters, saved to {models / name}")

    def stage_compress(self) -> None:
        from textdistill.compress.convert import compress_model, probe_change

        models = self.state.run_dir / "models"
        names = self.config.compress.models or [name for name, _ in self.config.students]
        missing = [name for name in names if not (models / name / "manifest.json").exists()]
        if missing:
            saved = sorted(p.parent.name for p in models.glob("*/manifest.json"))
            raise TextdistillError(f"[compress] models {missing} are not under {models} (saved: {saved or 'none'}); train them in an earlier stage or fix the names.")
        for name in names:
            for precision in self.config.compress.precisions:
                out = models / f"{name}-{COMPRESSED_SUFFIX[precision]}"
                compressed = compress_model(models / name, out, int8=precision == "int8", int8_tolerance=self.config.compress.int8_tolerance)
                console.print(f"{name}: {precision} ONNX saved to {out} (largest probability change on the probe texts: {probe_change(compressed):.2g})")

    def stage_validate(self) -> None:
        from textdistill.models.automation import automate_model
        from textdistill.models.out_of_scope import fit_model

        settings, state = self.config.validate, self.state
        skip = self.config.data.spec.skip_bad_rows
        for model_dir in sorted(p.parent for p in (state.run_dir / "models").glob("*/manifest.json")):
            automation = automate_model(model_dir, state.validation, target_precision=settings.target_precision, skip_bad_rows=skip)
            said = f"{model_dir.name}: {automation.n_reached} of {len(automation.labels)} labels reach {settings.target_precision:g} precision on validation"
            if settings.out_of_scope != "off" and not state.validation.multi_label:
                found = fit_model(model_dir, state.train, state.validation, score=settings.out_of_scope, max_in_scope_loss=settings.max_in_scope_loss, skip_bad_rows=skip)
                said += f"; reject option {found.score}, {found.validation['rejected_share']:.1%} of validation rejected"
            console.print(said)

    def stage_evaluate(self) -> None:
        models = sorted(p.parent for p in (self.state.run_dir / "models").glob("*/manifest.json"))
        if not models:
            raise TextdistillError(f"no models under {self.state.run_dir / 'models'} to evaluate: add a training stage.")
        for model_dir in models:
            result = evaluate_model(
                model_dir,
                self.state.test,
                name=model_dir.name,
                skip_bad_rows=self.config.data.spec.skip_bad_rows,
                cost=self.config.cost,
                positive_label=self.config.positive_label,
            )
            path = write_evaluation(result, self.state.run_dir / "evaluations" / f"{model_dir.name}.json")
            console.print(f"{model_dir.name}: {quality_summary(result)} -> {path}")

    def stage_report(self) -> None:
        evaluations = collect_evaluations([self.state.run_dir])
        files = build_report(evaluations, self.state.run_dir / "report", title=self.config.report_title)
        # the path and the results table are the command's last words (textdistill run / demo), printed once
        self.state.report_html, self.state.evaluations = files.html, evaluations


    def stage_suggest(self) -> None:
        from textdistill.refine.check import check_labels
        from textdistill.refine.suggest import suggest, write_queue

        state, settings = self.state, self.config.suggest
        if settings.check_folds:
            check = check_labels(state.train, folds=settings.check_folds, seed=self.config.seed)
            state.label_issues = check.write_csv(state.run_dir / "suggest" / "label_issues.csv", check.ranked(), self.config.data.spec.label_sep)
            state.label_check = check
            for warning in check.warnings:
                console.print(f"  {warning}", style="yellow")
            console.print(f"{check.n_flagged} of {len(check)} training annotations look wrong (TF-IDF, {settings.check_folds}-fold, cleanlab) in {state.label_issues}")
        models = state.run_dir / "models"
        name = settings.model or next((n for n in ("teacher", "baseline") if (models / n / "manifest.json").exists()), None)
        if name is None or not (models / name / "manifest.json").exists():
            raise TextdistillError(f"stage 'suggest' has no model to ask: train one first (stage 'teach' or 'baseline') or set [suggest] model to a name under {models}.")
        if state.unannotated is None:
            console.print("no unannotated messages ([data] unannotated): nothing to suggest")
            return
        transfer = state.run_dir / "transfer"
        reuse = transfer if name == "teacher" and (transfer / "manifest.json").exists() else None
        annotated = _concat([state.train, state.validation]) if state.validation is not None else state.train
        suggestions = suggest(models / name, state.unannotated, strategy=settings.strategy, k=settings.k, annotated=annotated, transfer_dir=reuse, seed=self.config.seed)
        state.queue = write_queue(suggestions, state.unannotated, state.run_dir / "suggest" / "queue.csv", self.config.data.spec)
        state.suggestions = suggestions
        console.print(f"{len(suggestions.picks)} messages to annotate next ({settings.strategy}, by the {name}) in {state.queue}")


def _strict(cls, values: dict[str, Any]):
    unknown = set(values) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} options: {', '.join(sorted(unknown))}")
    return cls(**values)


def _concat(sets: list[MessageSet]) -> MessageSet:
    first = sets[0]
    merged = first.subset(range(len(first)))
    for other in sets[1:]:
        merged.texts += other.texts
        merged.ids += other.ids
        merged.label_sets += other.label_sets
        merged.rows += other.rows
        merged.cleaned_chars = None if merged.cleaned_chars is None or other.cleaned_chars is None else merged.cleaned_chars + other.cleaned_chars
        merged.skipped = merged.skipped + other.skipped
        merged.warnings = merged.warnings + other.warnings
    merged.source = ", ".join(dict.fromkeys(s.source for s in sets))
    return merged


def _summary(messages: MessageSet) -> dict:
    counts = Counter(label for labels in messages.label_sets if labels for label in labels)
    return {
        "source": messages.source,
        "n_messages": len(messages),
        "label_counts": dict(sorted(counts.items())),
        "skipped_rows": len(messages.skipped),
        "skipped": [asdict(s) for s in messages.skipped],
        "skipped_rows_file": "skipped_rows.csv" if messages.skipped else None,
        "warnings": list(messages.warnings),
        "text_cleaning": text_cleaning(messages),
    }


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
