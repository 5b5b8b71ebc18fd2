"""What the report says about the models as a whole: their roles and order, the headline metric,
its intervals, and the one-sentence verdict."""

from __future__ import annotations

from pathlib import Path

from textdistill.evaluate.report.noise import Difference, Noise
from textdistill.evaluate.report.pareto import number

HEADLINE_TITLES = {"accuracy": "accuracy", "micro_f1": "micro-F1", "positive_f1": "positive-class F1"}
_ROLE_ORDER = ("baseline", "teacher", "student", "compressed", "model")
_STUDENT_KINDS = ("static", "bilstm", "early_exit")


def with_role(evaluation: dict) -> dict:
    """The evaluation with ``role`` (and a compressed copy's ``source``) filled in: as recorded at
    evaluate time, else inferred from its kind and name (evaluations written before roles were)."""
    if evaluation.get("role") in _ROLE_ORDER:
        return evaluation
    compression = evaluation.get("compression") or {}
    kind, name = evaluation.get("kind"), str(evaluation["name"])
    if compression:
        inferred = {"role": "compressed", "source": Path(str(compression.get("source") or "?")).name}
    elif kind == "baseline":
        inferred = {"role": "baseline"}
    elif kind == "transformer" and "teacher" in name:
        inferred = {"role": "teacher"}
    else:
        inferred = {"role": "student" if kind in _STUDENT_KINDS else "model"}
    return {**evaluation, **inferred}


def _is_source(candidate: dict, copy: dict) -> bool:
    source = (copy.get("compression") or {}).get("source")
    if source and candidate.get("model_dir") and Path(candidate["model_dir"]).resolve() == Path(source).resolve():
        return True
    return bool(copy.get("source")) and candidate["name"] == copy["source"]


def ordered(evaluations: list[dict]) -> list[dict]:
    """Baselines, teachers, students (each followed by its compressed copies), compressed copies
    whose source is not in the report, other models; the given order within each group."""
    evaluations = [with_role(ev) for ev in evaluations]
    copies = [ev for ev in evaluations if ev["role"] == "compressed"]
    placed: list[dict] = []
    for role in _ROLE_ORDER:
        for ev in evaluations:
            if ev["role"] != role or (role == "compressed" and any(ev is p for p in placed)):
                continue
            placed.append(ev)
            placed += [copy for copy in copies if copy is not ev and _is_source(ev, copy) and not any(copy is p for p in placed)]
    return placed


def headline_metric(evaluations: list[dict]) -> str:
    """micro-F1 when any model is multi-label, the positive class's F1 when every model is
    two-class with a recorded positive class, else accuracy."""
    if any(ev.get("multi_label") for ev in evaluations):
        return "micro_f1"
    if all(isinstance(ev.get("positive_class"), dict) for ev in evaluations):
        return "positive_f1"
    return "accuracy"


def headline_value(evaluation: dict, metric: str) -> float | None:
    if metric == "positive_f1":
        return number((evaluation.get("positive_class") or {}).get("f1"))
    return number(evaluation.get(metric))


def role_text(evaluation: dict) -> str:
    role = evaluation["role"]
    if role == "compressed":
        precision = (evaluation.get("compression") or {}).get("precision") or "compressed"
        return f"{precision} copy of {evaluation.get('source') or '?'}"
    return role


class Analysis:
    """The evaluations in report order, their headline metric and its bootstrap noise."""

    def __init__(self, evaluations: list[dict]) -> None:
        self.evaluations = ordered(evaluations)
        self.metric = headline_metric(self.evaluations)
        self.title = HEADLINE_TITLES[self.metric]
        self.values = [headline_value(ev, self.metric) for ev in self.evaluations]
        self.noise = Noise(self.evaluations, self.metric, self.values)
        roles = [ev["role"] for ev in self.evaluations]
        self.baseline = roles.index("baseline") if "baseline" in roles else None
        self.teacher = roles.index("teacher") if "teacher" in roles else None

    def latency(self, i: int) -> float | None:
        latency = number(self.evaluations[i].get("latency_ms_p50"))
        return latency if latency is not None and latency > 0 else None

    def difference(self, a: int, b: int) -> Difference | None:
        return self.noise.difference(a, b)

    def best_student(self) -> int | None:
        """The student or compressed copy with the highest headline metric (ties: the fastest)."""
        students = [i for i, ev in enumerate(self.evaluations) if ev["role"] in ("student", "compressed") and self.values[i] is not None]
        return max(students, key=lambda i: (self.values[i], -(self.latency(i) or float("inf"))), default=None)

    def verdict(self) -> str | None:
        """One sentence: what the best student keeps of the teacher, and how it compares with the baseline."""
        best = self.best_student()
        if best is None:
            if self.teacher is not None and self.baseline is not None:
                return f"the teacher {self._versus(self.teacher, self.baseline, 'the TF-IDF baseline')}."
            return None
        name = self.evaluations[best]["name"]
        name = name if "student" in name else f"the {name} student"
        parts = []
        if self.teacher is not None and self.values[self.teacher]:
            share = 100 * self.values[best] / self.values[self.teacher]
            part = f"{name} keeps {share:.1f} % of the teacher's {self.title}"
            if (ratio := _latency_ratio(self.latency(self.teacher), self.latency(best))) is not None:
                part += f" at 1/{ratio:,.0f} of its latency" if ratio >= 1.5 else f" at {1 / ratio:.2g}× its latency"
            parts.append(part)
        if self.baseline is not None:
            parts.append(f"{'it' if parts else name} {self._versus(best, self.baseline, 'the TF-IDF baseline')}")
        return "; ".join(parts) + "." if parts else None

    def _versus(self, a: int, b: int, other: str) -> str:
        difference = self.difference(a, b)
        if difference is None:
            return f"cannot be compared with {other} (no {self.title} recorded)"
        points = f"{100 * difference.value:+.1f} points"
        if not difference.assessed:
            return f"is {points} against {other} (noise not assessed: no per-message results recorded)"
        if difference.sign == 0:
            return f"is within noise of {other} ({points}, {interval_text(difference)})"
        return f"is {'better' if difference.sign > 0 else 'worse'} than {other} ({points}, {interval_text(difference)})"

    def weak_teacher_warnings(self) -> list[str]:
        """Why distilling from this teacher may not pay: it did not beat the baseline on validation
        (recorded when it was trained) or is not better than it on the test data."""
        if self.teacher is None:
            return []
        warnings = []
        check = self.evaluations[self.teacher].get("teacher_check") or {}
        if check and check.get("teacher_is_better") is False:
            metric = HEADLINE_TITLES.get(str(check.get("metric")), str(check.get("metric", "score")))
            warnings.append(
                f"Weak teacher: on the validation data its {metric} is {_score(check.get('teacher'))}, the TF-IDF "
                f"baseline's {_score(check.get('baseline'))}. Students distilled from it will be weak; train longer "
                "(--epochs), try another --method or a bigger --model, or check the labels."
            )
        if self.baseline is not None and (difference := self.difference(self.teacher, self.baseline)) is not None:
            if difference.sign <= 0:
                how = "worse than" if difference.sign < 0 else "not better than (within noise of)"
                warnings.append(
                    f"On the test data the teacher ({self.title} {_score(self.values[self.teacher])}) is {how} the "
                    f"TF-IDF baseline ({_score(self.values[self.baseline])}): distillation does not pay here."
                )
        return warnings


def interval_text(difference: Difference) -> str:
    return f"95 % interval {100 * difference.low:+.1f} to {100 * difference.high:+.1f}"


def _latency_ratio(slow: float | None, fast: float | None) -> float | None:
    return None if slow is None or fast is None else slow / fast


def _score(value: object) -> str:
    v = number(value)
    return "—" if v is None else f"{v:.3f}"
