"""Distillation of students from a teacher: losses selectable by name (``losses/``) and forward
hooks that read intermediate outputs of a model without rewriting its ``forward()`` (``hooks``)."""
