"""Is the teacher better than the TF-IDF baseline? Distilling from a weak teacher makes weak students."""

from __future__ import annotations

from collections.abc import Sequence

from rich.panel import Panel

from textdistill.console import stderr_console
from textdistill.models.baseline import TfidfBaseline
from textdistill.training.finetune import validation_score

console = stderr_console()


def compare_with_baseline(
    teacher,
    train: tuple[Sequence[str], Sequence[Sequence[str]]],
    validation: tuple[Sequence[str], Sequence[Sequence[str]]],
) -> dict:
    """Validation score (accuracy, or micro-F1 for multi-label) of the teacher and of a TF-IDF
    baseline trained on the same messages; warns loudly when the teacher is not better."""
    space = teacher.label_space
    baseline = TfidfBaseline().fit(train[0], train[1], multi_label=space.multi_label, hierarchy_sep=space.hierarchy_sep)
    result = {
        "metric": "micro_f1" if space.multi_label else "accuracy",
        "teacher": validation_score(teacher, validation),
        "baseline": validation_score(baseline, validation),
    }
    result["teacher_is_better"] = result["teacher"] > result["baseline"]
    line = f"validation {result['metric']}: teacher {result['teacher']:.4f}, TF-IDF baseline {result['baseline']:.4f}"
    if result["teacher_is_better"]:
        console.print(line)
    else:
        console.print(
            Panel(
                f"{line}\nThe teacher is NOT better than the baseline: students distilled from it will be weak.\n"
                "Train longer (--epochs), try another --method or a bigger --model, or check the labels.",
                title="warning: weak teacher",
                style="bold red",
            )
        )
    return result
