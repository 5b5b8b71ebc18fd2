"""Shared by the losses on intermediate states: layer maps, width projections, padding masks."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from textdistill.errors import TextdistillError


def uniform_layer_map(n_student: int, n_teacher: int) -> dict[int, int]:
    """Student layer l (1-based) -> teacher layer l·N/M, rounded down (TinyBERT's g(m) = m·N/M):
    3 student layers over 12 teacher layers map to 4, 8, 12."""
    if not 0 < n_student <= n_teacher:
        raise TextdistillError(
            f"cannot spread {n_student} student layers uniformly over {n_teacher} teacher layers; give an explicit layer_map"
        )
    return {layer: layer * n_teacher // n_student for layer in range(1, n_student + 1)}


def parse_layer_map(layer_map: Mapping | None, loss: str) -> dict[int, int] | None:
    """``{student_layer: teacher_layer}`` with 1-based layers; keys may be strings (TOML tables)."""
    if layer_map is None:
        return None
    try:
        parsed = {int(student): int(teacher) for student, teacher in dict(layer_map).items()}
    except (TypeError, ValueError):
        raise TextdistillError(f"loss {loss!r}: layer_map should map student layers to teacher layers, like {{1: 4, 2: 8}}; got {layer_map!r}") from None
    if not parsed or min(*parsed, *parsed.values()) < 1:
        raise TextdistillError(f"loss {loss!r}: layer_map {layer_map!r} should be non-empty, with layers counted from 1 (0 is the embeddings)")
    return parsed


def resolve_layer_map(layer_map: dict[int, int] | None, n_student: int, n_teacher: int, loss: str) -> dict[int, int]:
    """The configured map checked against the layer counts, or the uniform map."""
    if layer_map is None:
        return uniform_layer_map(n_student, n_teacher)
    bad = {s: t for s, t in layer_map.items() if s > n_student or t > n_teacher}
    if bad:
        raise TextdistillError(f"loss {loss!r}: layer_map {bad} names layers beyond the student's {n_student} or the teacher's {n_teacher}")
    return layer_map


class WidthMatch(nn.Module):
    """Brings student states to the teacher's width: a learned ``nn.Linear(student_dim, teacher_dim)``
    when the widths differ (TinyBERT's W; MobileBERT's narrow students), the identity otherwise.
    The projection is a parameter of the loss: the trainer must optimise it with the student."""

    def __init__(self, loss: str, student_dim: int | None, teacher_dim: int | None) -> None:
        super().__init__()
        if (student_dim is None) != (teacher_dim is None):
            raise TextdistillError(f"loss {loss!r}: give both student_dim and teacher_dim, or neither when the widths are equal")
        self.loss = loss
        self.dims = (student_dim, teacher_dim)
        self.projection = nn.Linear(student_dim, teacher_dim) if student_dim != teacher_dim else None

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        widths = (student.shape[-1], teacher.shape[-1])
        if self.projection is None and widths[0] != widths[1]:
            raise TextdistillError(
                f"loss {self.loss!r}: the student is {widths[0]} wide and the teacher {widths[1]}; set "
                f"student_dim={widths[0]} and teacher_dim={widths[1]} so that the loss learns a projection"
            )
        if self.projection is None:
            return student
        if widths != self.dims:
            raise TextdistillError(f"loss {self.loss!r} was built for widths {self.dims} (student, teacher) but got {widths}")
        return self.projection(student)


def masked_mse(student: Tensor, teacher: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the real tokens of (n, T, d) states; ``mask`` is (n, T)."""
    if student.shape != teacher.shape:
        raise ValueError(
            f"cannot compare student states {tuple(student.shape)} with teacher states {tuple(teacher.shape)}: "
            "losses on intermediate states need student and teacher to see the same tokens"
        )
    squared = (student - teacher).pow(2) * mask.unsqueeze(-1)
    return squared.sum() / (mask.sum() * student.shape[-1]).clamp(min=1)
