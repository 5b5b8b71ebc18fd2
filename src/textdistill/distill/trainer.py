"""Distillation as a small subclass of the training loop (SetFit's design): the targets are the
teacher's logits (plus the labels of annotated messages) and the loss is a weighted sum of
registered loss terms.

Logit-level losses (``kd``, ``logit_mse``, ``ce``) need only the cached transfer-set logits. Losses
on intermediate states (``cosine``, ``pkd``, ``tinybert_*``) also need a live teacher: it runs on
each batch without gradients, and both networks' states are read with forward hooks on the stock
modules (:class:`HiddenStateRecorder`), so student and teacher must share the tokenizer. The
teacher reads the student's batch: when the student reads long messages in windows, both
networks' states are those of the same windows, compared window by window.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from textdistill.distill.hooks import HiddenStateRecorder, layer_paths
from textdistill.distill.losses import DistillBatch, WeightedLossSum, loss_parameters
from textdistill.errors import TextdistillError
from textdistill.training.arguments import TrainingArguments
from textdistill.training.finetune import FineTuner

STATE_LOSSES = {"cosine", "pkd", "tinybert_embedding", "tinybert_hidden", "tinybert_attention"}


class DistillationTrainer(FineTuner):
    """Trains a student on teacher logits (and labels where known) with configured loss terms.

    ``terms`` as for :class:`WeightedLossSum`, e.g. ``[{"name": "kd", "weight": 0.5,
    "temperature": 2}, {"name": "ce", "weight": 0.5}]``. ``teacher`` (a loaded
    TransformerClassifier) is needed only for losses on intermediate states.
    """

    def __init__(
        self,
        terms: Sequence[Mapping[str, Any]],
        args: TrainingArguments | None = None,
        checkpoint_dir=None,
        teacher=None,
    ) -> None:
        # The linear-probe warm start fits hard labels; a student learns its head from the teacher.
        super().__init__(replace(args or TrainingArguments(), linear_probe=False), checkpoint_dir)
        self.terms = [dict(term) for term in terms]
        self.teacher = teacher
        self.losses: WeightedLossSum | None = None
        self._teacher_logits: torch.Tensor | None = None
        self._label_mask: np.ndarray | None = None
        self._recorders: tuple[HiddenStateRecorder, HiddenStateRecorder] | None = None
        self._attention_recorders: tuple[HiddenStateRecorder, HiddenStateRecorder] | None = None

    def train(self, model, texts, label_sets, validation=None, *, teacher_logits: np.ndarray) -> list[dict]:
        """``label_sets[i]`` is None for unannotated messages; ``teacher_logits`` is (n, L) in the
        student's label order."""
        if len(teacher_logits) != len(texts):
            raise TextdistillError(f"{len(teacher_logits)} rows of teacher logits for {len(texts)} messages")
        self._label_mask = np.array([labels is not None for labels in label_sets])
        self._teacher_logits = torch.as_tensor(np.asarray(teacher_logits, dtype=np.float32))
        label_sets = [labels if labels is not None else () for labels in label_sets]
        needs_states = any(term["name"] in STATE_LOSSES for term in self.terms)
        if needs_states and self.teacher is None:
            names = ", ".join(sorted(STATE_LOSSES & {t["name"] for t in self.terms}))
            raise TextdistillError(f"loss(es) {names} compare intermediate states, which needs the teacher model itself, not only its logits")
        self._needs_states = needs_states
        with contextlib.ExitStack() as self._hooks:
            return super().train(model, texts, label_sets, validation)

    # -- the two overridden steps ---------------------------------------------------------
    def targets(self, model, label_sets) -> dict[str, torch.Tensor]:
        space = model.label_space
        mask = torch.as_tensor(self._label_mask)
        if space.multi_label:
            labels = torch.as_tensor(space.encode(label_sets), dtype=torch.float32)
        else:
            placeholder = (space.labels[0],)  # unannotated rows: masked out of every label loss
            labels = torch.as_tensor(space.encode_single([s if m else placeholder for s, m in zip(label_sets, self._label_mask)]))
        self.losses.prepare(labels, mask)  # label frequencies, for the terms that weigh by them
        return {"teacher_logits": self._teacher_logits, "labels": labels, "label_mask": mask}

    def loss(self, model, logits, targets, batch) -> torch.Tensor:
        states: dict[str, Any] = {}
        if self._recorders is not None:
            student_recorder, teacher_recorder = self._recorders
            with torch.no_grad():
                self.teacher.network(**batch)
            states = {
                "student_hidden": student_recorder.outputs,
                "teacher_hidden": [h.detach().float() for h in teacher_recorder.outputs],
                "attention_mask": batch["attention_mask"],
            }
            if self._attention_recorders is not None:
                student_attentions, teacher_attentions = self._attention_recorders
                states["student_attentions"] = student_attentions.outputs
                states["teacher_attentions"] = [a.detach().float() for a in teacher_attentions.outputs]
        distill_batch = DistillBatch(
            student_logits=logits,
            teacher_logits=targets["teacher_logits"],
            labels=targets["labels"],
            label_mask=targets["label_mask"],
            multi_label=model.label_space.multi_label,
            **states,
        )
        total, _ = self.losses(distill_batch)
        return total

    def extra_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.losses.parameters() if p.requires_grad] if self.losses is not None else []

    # -- set-up ------------------------------------------------------------------------------
    def network_built(self, model) -> None:
        """Build the loss terms (their widths and layers are known now) and, for losses on
        intermediate states, start recording both networks' layer outputs."""
        terms = self.terms
        if self._needs_states:
            terms = [self._with_widths(term, model) for term in terms]
            self.teacher.network.eval()
            networks = (model.network, self.teacher.network)
            self._recorders = tuple(
                self._hooks.enter_context(HiddenStateRecorder(network, layer_paths(network, embeddings=True))) for network in networks
            )
            if "tinybert_attention" in {t["name"] for t in terms}:
                self._attention_recorders = tuple(self._record_attentions(network) for network in networks)
        self.losses = WeightedLossSum(terms).to(model.device)

    def _record_attentions(self, network) -> HiddenStateRecorder:
        """Switch the encoder to eager attention (SDPA computes no probabilities), without attention
        dropout, and record each layer's attention probabilities, the second output of its
        self-attention module."""
        encoder = network.encoder
        paths = [f"{path}.attention.self" for path in layer_paths(network)]
        if encoder.config.model_type not in ("bert", "roberta", "xlm-roberta", "electra") or not hasattr(encoder, "set_attn_implementation"):
            raise TextdistillError(
                f"the tinybert_attention loss reads attention probabilities of BERT-like encoders; {encoder.config.model_type} "
                "does not return them to hooks. Use tinybert_hidden, pkd or cosine with this model"
            )
        encoder.set_attn_implementation("eager")
        # The recorded probabilities come after attention dropout; matching dropped-out maps would
        # pull the student's maps below the teacher's (the dropout noise adds p² variance).
        for path in paths:
            network.get_submodule(path).dropout.p = 0.0
        return self._hooks.enter_context(HiddenStateRecorder(network, paths, index=1))

    def _with_widths(self, term: dict, model) -> dict:
        """Fill in student_dim / teacher_dim for losses that project between widths."""
        accepted = loss_parameters(term["name"])
        if "student_dim" not in accepted or "student_dim" in term:
            return term
        student = model.network.encoder.config.hidden_size
        teacher = self.teacher.network.encoder.config.hidden_size
        return {**term, "student_dim": student, "teacher_dim": teacher} if student != teacher else term

    def _fingerprint(self, model, texts, label_sets) -> dict:
        digest = hashlib.sha256(self._teacher_logits.numpy().tobytes()).hexdigest()
        return {**super()._fingerprint(model, texts, label_sets), "teacher_logits": digest, "losses": self.terms, "mask": int(self._label_mask.sum())}
