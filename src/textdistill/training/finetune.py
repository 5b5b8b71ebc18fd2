"""The training loop of every torch model: warm start, schedule, early stopping, resume.

A trainable model (the transformer classifier, the students) provides ``build_network(texts)``
(creates ``model.network``, whose ``forward(**batch)`` returns (n, L) logits and whose head
parameters are named ``head.*``), ``token_ids(texts)``, ``collate(ids)`` (network inputs on
``model.device``), ``training_config()`` (what its checkpoints are fingerprinted with) and
``predict_proba``. :class:`textdistill.distill.DistillationTrainer` subclasses the loop and
overrides ``targets`` and ``loss``.

Each epoch's batch order follows from (seed, epoch) alone, so a run that is interrupted and
started again replays the same order and skips the batches it has already trained on; the
checkpoint holds the trainable weights, optimizer, scheduler and RNG state.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

from textdistill.console import stderr_console
from textdistill.models.manifest import data_fingerprint
from textdistill.models.thresholds import tune_thresholds
from textdistill.progress import track
from textdistill.training.arguments import TrainingArguments
from textdistill.training.multi_label_loss import MultiLabelLoss
from textdistill.training.probe import fit_linear_probe

console = stderr_console()
STATE_FILE = "state.pt"
META_FILE = "meta.json"
MEGA_BATCHES = 50  # batches whose messages are sorted by length together (less padding)


def batch_order(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled batches of similar-length messages, the same for the same (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    batches = []
    span = batch_size * MEGA_BATCHES
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def planned_epochs(args: TrainingArguments, n_texts: int) -> int:
    """``args.epochs``, raised so that training takes at least ``args.min_steps`` optimizer steps:
    an epoch count that suits a large set leaves a small one undertrained (on 6k NLU++ messages,
    4 epochs of a MiniLM-L3 student ended at 0.59 micro-F1 while still rising; 15 reached 0.90)."""
    steps_per_epoch = math.ceil(n_texts / args.batch_size)
    return max(args.epochs, math.ceil(args.min_steps / steps_per_epoch)) if steps_per_epoch else args.epochs


def trainable_state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in network.named_parameters() if p.requires_grad}


class FineTuner:
    """Trains a model on its labels; subclass and override ``targets`` and ``loss`` to distil."""

    def __init__(self, args: TrainingArguments | None = None, checkpoint_dir: str | Path | None = None) -> None:
        self.args = args or TrainingArguments()
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.history: list[dict] = []
        self.label_loss = MultiLabelLoss(self.args.multi_label_loss)

    def targets(self, model, label_sets: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Per-message training targets, indexed by row: here the labels (multi-label: every
        label's ancestors marked too, see :meth:`LabelSpace.encode`), whose frequencies the
        multi-label loss counts here."""
        space = model.label_space
        if space.multi_label:
            labels = torch.as_tensor(space.encode(label_sets), dtype=torch.float32)
            self.label_loss.fit(labels)
            return {"labels": labels}
        return {"labels": torch.as_tensor(space.encode_single(label_sets))}

    def loss(self, model, logits: torch.Tensor, targets: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of one batch; ``targets`` holds this batch's rows of ``self.targets(...)``."""
        if model.label_space.multi_label:
            return self.label_loss(logits, targets["labels"]).mean()
        return nn.functional.cross_entropy(logits, targets["labels"])

    def network_built(self, model) -> None:
        """Called once ``model.network`` exists, before training starts."""

    def extra_parameters(self) -> list[nn.Parameter]:
        """Parameters trained beside the network's (a distillation loss's projections)."""
        return []

    def train(
        self,
        model,
        texts: Sequence[str],
        label_sets: Sequence[Sequence[str]],
        validation: tuple[Sequence[str], Sequence[Sequence[str]]] | None = None,
    ) -> list[dict]:
        args = self.args
        torch.manual_seed(args.seed)
        model.build_network(texts)
        self.network_built(model)
        network = model.network
        targets = self.targets(model, label_sets)

        state = self._load_checkpoint(model, texts, label_sets)
        warm_start = state is None and args.linear_probe and getattr(model, "supports_linear_probe", False)
        if warm_start:
            probe = fit_linear_probe(model, texts, label_sets, validation, args.probe_C, source=model.source)
            console.print(f"linear probe: C={probe['probe_C']}, validation score {probe['probe_validation_score']}")
            self.history.append({"epoch": 0, **probe})
        method = getattr(model, "method", None)
        if (method is not None and method.name == "head") or args.epochs == 0:
            return self.history

        token_ids = model.token_ids(texts)
        lengths = [len(ids) for ids in token_ids]
        steps_per_epoch = math.ceil(len(texts) / args.batch_size)
        epochs = planned_epochs(args, len(texts))
        optimizer = self._optimizer(network, self.extra_parameters())
        total = steps_per_epoch * epochs
        warmup = int(total * args.warmup_ratio)
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
        # A warm-started model (pretrained encoder, probed head) is the score to beat: fine-tuning
        # that only hurts is undone. A random head is no candidate: its score is luck (a
        # multi-label student predicting every label scores above one that has learnt the label
        # priors but not yet the messages).
        step, best_score, best_state, stale = 0, -1.0, None, 0
        if warm_start and validation is not None:
            best_score, best_state = validation_score(model, validation), trainable_state(network)
        if state is not None:
            network.load_state_dict(state["network"], strict=False)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"])
            step, best_score, stale = state["step"], state["best_score"], state["stale"]
            best_state = state.get("best_state")
            self.history = json.loads(state["history"])
            console.print(f"resuming from step {step} of {total}")

        use_amp = args.mixed_precision and model.device.type == "cuda"
        for epoch in range(step // steps_per_epoch, epochs):
            network.train()
            started, losses = time.perf_counter(), []
            batches = batch_order(lengths, args.batch_size, args.seed, epoch)
            done = step - epoch * steps_per_epoch
            for rows in track(batches[done:], f"Epoch {epoch + 1}/{epochs}", total=len(batches) - done):
                batch = model.collate([token_ids[i] for i in rows])
                batch_targets = {name: value[rows].to(model.device) for name, value in targets.items()}
                with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits = network(**batch)
                    loss = self.loss(model, logits.float(), batch_targets, batch)
                loss.backward()
                nn.utils.clip_grad_norm_([*network.parameters(), *self.extra_parameters()], args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                step += 1
                if step % args.checkpoint_every == 0:
                    self._save_checkpoint(model, texts, label_sets, optimizer, scheduler, step, best_score, best_state, stale)
            record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else None, "seconds": time.perf_counter() - started}
            if validation is not None:
                record["validation_score"] = score = validation_score(model, validation)
                if score > best_score:
                    best_score, best_state, stale = score, trainable_state(network), 0
                elif step > warmup:
                    # An epoch still in the warm-up does not count against patience: when
                    # min_steps stretches a small set to many epochs, the warm-up spans several
                    # and a model learning at a fraction of its rate would be stopped too soon.
                    stale += 1
            self.history.append(record)
            console.print(", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
            self._save_checkpoint(model, texts, label_sets, optimizer, scheduler, step, best_score, best_state, stale)
            if validation is not None and stale >= args.early_stopping_patience:
                console.print(f"early stopping: no better validation score for {stale} epochs")
                break
        if best_state is not None:
            network.load_state_dict(best_state, strict=False)
        return self.history

    def _optimizer(self, network: nn.Module, extra: list[nn.Parameter]) -> torch.optim.Optimizer:
        """AdamW; the head (and any loss projection) has its own learning rate; no weight decay
        on biases and norms."""
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        named = [*network.named_parameters(), *((f"head.extra.{i}", p) for i, p in enumerate(extra))]
        for name, parameter in named:
            if parameter.requires_grad:
                is_head = name.startswith("head.")
                no_decay = parameter.ndim < 2
                groups.setdefault((is_head, no_decay), []).append(parameter)
        args = self.args
        return torch.optim.AdamW(
            [
                {
                    "params": params,
                    "lr": args.head_learning_rate if is_head else args.learning_rate,
                    "weight_decay": 0.0 if no_decay else args.weight_decay,
                }
                for (is_head, no_decay), params in groups.items()
            ]
        )

    # -- checkpoints -----------------------------------------------------------------------
    def _fingerprint(self, model, texts, label_sets) -> dict:
        return {
            "args": {k: v for k, v in self.args.to_dict().items() if k not in ("checkpoint_every", "device")},
            "model": {"kind": model.kind, **model.training_config()},
            "data": data_fingerprint(texts, label_sets, None)["sha256"],
            "labels": list(model.label_space.labels),
        }

    def _save_checkpoint(self, model, texts, label_sets, optimizer, scheduler, step, best_score, best_state, stale) -> None:
        if self.checkpoint_dir is None:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "network": trainable_state(model.network),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "step": step,
            "best_score": best_score,
            "best_state": best_state,
            "stale": stale,
            "history": json.dumps(self.history),
        }
        tmp = self.checkpoint_dir / (STATE_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.checkpoint_dir / STATE_FILE)
        (self.checkpoint_dir / META_FILE).write_text(json.dumps(self._fingerprint(model, texts, label_sets)), encoding="utf-8")

    def _load_checkpoint(self, model, texts, label_sets) -> dict | None:
        if self.checkpoint_dir is None or not (self.checkpoint_dir / STATE_FILE).exists():
            return None
        meta = json.loads((self.checkpoint_dir / META_FILE).read_text(encoding="utf-8"))
        if meta != self._fingerprint(model, texts, label_sets):
            console.print(f"ignoring the checkpoint in {self.checkpoint_dir}: it is from a different run (other data or settings)", style="yellow")
            return None
        # Our own checkpoint: tensors and plain containers only, loaded without unpickling code.
        return torch.load(self.checkpoint_dir / STATE_FILE, weights_only=True)


def validation_score(model, validation: tuple[Sequence[str], Sequence[Sequence[str]]]) -> float:
    """Accuracy (single-label), or micro-F1 at the best global threshold (multi-label: the
    threshold is tuned on validation afterwards, and a fixed 0.5 reads 0 early in training,
    when every probability is still small)."""
    space = model.label_space
    proba = model.predict_proba(list(validation[0]))
    if not space.multi_label:
        return float((proba.argmax(1) == space.encode_single(validation[1])).mean())
    y = space.encode(validation[1]).astype(bool)
    pred = proba >= tune_thresholds(y, proba, "global")
    tp = (pred & y).sum()
    return float(2 * tp / max(pred.sum() + y.sum(), 1))
