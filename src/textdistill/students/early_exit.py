"""Early exit for transformer classifiers (DeeBERT, Xin et al. 2020; FastBERT, Liu et al. 2020).

A branch classifier after every transformer layer lets a message leave the encoder as soon as
one branch is sure enough, so easy messages pay for a few layers and hard ones for all of them.

Branches. After layer k (k < N) a branch mean-pools that layer's output over the attention mask
and a long message's windows (as the final head does) and classifies it with a small MLP, Linear(hidden, ``branch_hidden``)
-> tanh -> Linear(``branch_hidden``, L); ``branch_hidden=0`` makes it a single linear layer. A
small MLP rather than a linear layer because the lower layers' features are not yet arranged for
the final head's linear read-out (FastBERT's branches are small networks too); its cost is
negligible beside a transformer layer. The branch after the last layer is the model's own head.

Training (FastBERT's self-distillation). The backbone and its head are frozen; on unlabelled
texts (the transfer set's) every branch learns to match the final classifier:
T^2 KL(softmax(final / T) || softmax(branch / T)) for single-label models, binary cross-entropy
against the final sigmoids for multi-label ones. The frozen backbone runs once per batch without
gradients and all branches train together on its per-layer outputs.

Inference. The uncertainty of a prediction is its normalised entropy: entropy / log L for
single-label, the mean binary entropy in bits for multi-label; both lie in [0, 1]. A message
leaves at the first layer whose uncertainty is *strictly below* the threshold (as in both
papers), and at the last layer otherwise. So threshold 0 is the full model (every message runs
all layers and gets exactly the backbone's logits) and a threshold of 1 or more sends every
message out at layer 1 (uncertainty never exceeds 1; a branch that is exactly uniform leaves
too). Batches stay batches: the encoder is run layer by layer, the rows of the messages that
have left (all of a long message's windows) are dropped from the batch and the remaining rows
are cut to their longest, so the saved compute is real.

Saved as the backbone's own layout (``encoder/``, ``head.safetensors``) plus
``branches.safetensors``; the manifest's ``config.early_exit`` holds the threshold.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Self

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F
from transformers import get_linear_schedule_with_warmup
from transformers.masking_utils import create_bidirectional_mask

from textdistill.errors import ModelError, TextdistillError
from textdistill.models.base import TextClassifier, load_model, register_model
from textdistill.models.manifest import Manifest, data_fingerprint
from textdistill.models.transformer import TransformerClassifier, mean_pool, pick_device, pool_windows
from textdistill.persistence import load_model_arrays
from textdistill.progress import track
from textdistill.training.finetune import batch_order
from textdistill.tuning.adapters import AdapterEncoder

BRANCHES_FILE = "branches.safetensors"
DEFAULT_THRESHOLD = 0.1
DEFAULT_BRANCH_HIDDEN = 128
DEFAULT_SWEEP = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
WARMUP_RATIO = 0.1
MAX_GRAD_NORM = 1.0
# Encoders whose layers we call one by one: they share BERT's embeddings -> encoder.layer[i]
# structure and build their attention mask with `create_bidirectional_mask`. MPNet also adds a
# relative position bias that its encoder computes once per forward.
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "mpnet")


def normalised_entropy(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """(n,) uncertainty in [0, 1] of (n, L) logits: entropy / log L (single-label) or the mean
    binary entropy in bits over the labels (multi-label)."""
    logits = logits.float()
    if multi_label:
        p = torch.sigmoid(logits)
        bits = -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits)) / math.log(2)
        return bits.mean(dim=1)
    log_p = torch.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1) / math.log(logits.shape[1])


def branch_loss(branch_logits: torch.Tensor, final_logits: torch.Tensor, multi_label: bool, temperature: float = 1.0) -> torch.Tensor:
    """Self-distillation loss of one branch against the final classifier (mean over the batch)."""
    if multi_label:
        return F.binary_cross_entropy_with_logits(branch_logits, torch.sigmoid(final_logits))
    t = temperature
    return F.kl_div(
        torch.log_softmax(branch_logits / t, dim=1), torch.log_softmax(final_logits / t, dim=1), log_target=True, reduction="batchmean"
    ) * (t * t)


def keep_messages(windows: torch.Tensor | None, stay: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The batch rows that belong to the messages that ``stay`` (messages,) and those messages'
    ``windows`` renumbered for the smaller batch; without windows each row is a message."""
    if windows is None:
        return stay, None
    remaining = windows[stay]
    rows = torch.zeros(n_rows, dtype=torch.bool, device=windows.device)
    rows[remaining[remaining >= 0]] = True
    position = torch.cumsum(rows, 0) - 1
    return rows, torch.where(remaining >= 0, position[remaining.clamp(min=0)], remaining)


def _branch(hidden_size: int, n_labels: int, width: int) -> nn.Module:
    if width <= 0:
        return nn.Linear(hidden_size, n_labels)
    return nn.Sequential(nn.Linear(hidden_size, width), nn.Tanh(), nn.Linear(width, n_labels))


class LayerwiseEncoder:
    """Runs a Hugging Face encoder one layer at a time, the way its own ``forward`` does.

    Mirrors ``BertModel.forward`` / ``MPNetModel.forward`` of transformers 5: embeddings, the
    attention mask from ``create_bidirectional_mask`` (a 4-D mask or None, in the format of the
    configured attention implementation), then each layer. ``context`` must be rebuilt whenever
    the batch's rows or width change.
    """

    def __init__(self, encoder: nn.Module) -> None:
        base = encoder
        if isinstance(base, AdapterEncoder):
            base = base.encoder  # the adapters are forward hooks inside the layers: they still run
        if hasattr(base, "get_base_model"):
            base = base.get_base_model()  # peft LoRA: its layers replace modules in place
        config = getattr(base, "config", None)
        model_type = getattr(config, "model_type", type(base).__name__)
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if model_type not in SUPPORTED_MODEL_TYPES or layers is None or not hasattr(base, "embeddings"):
            raise TextdistillError(
                f"early exit cannot run a {model_type!r} encoder layer by layer; it supports "
                f"{', '.join(SUPPORTED_MODEL_TYPES)} (BERT, MiniLM, RoBERTa, XLM-R, MPNet). "
                "Distil into a student built on one of those, or evaluate this model without early exit."
            )
        if getattr(config, "is_decoder", False):
            raise TextdistillError(f"early exit needs a bidirectional encoder; this {model_type!r} model is configured as a decoder.")
        self.base = base
        self.config = config
        self.layers = layers
        self.relative_position_bias = model_type == "mpnet"

    def __len__(self) -> int:
        return len(self.layers)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.base.embeddings(input_ids=input_ids)

    def context(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        context = {"mask": create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)}
        if self.relative_position_bias:
            context["position_bias"] = self.base.encoder.compute_position_bias(hidden)
        return context

    def layer(self, index: int, hidden: torch.Tensor, context: dict) -> torch.Tensor:
        layer = self.layers[index]
        if self.relative_position_bias:
            out = layer(hidden, context["mask"], context["position_bias"])
        else:
            out = layer(hidden, context["mask"])
        return out[0] if isinstance(out, tuple) else out


@register_model("early_exit")
class EarlyExitClassifier(TextClassifier):
    """A trained :class:`TransformerClassifier` with a classifier branch after every layer.

    Build it from a backbone (``EarlyExitClassifier(backbone)``), train the branches with
    :meth:`distil` (or :func:`train_early_exit`, which also loads and saves), then predict as any
    :class:`TextClassifier`: ``decision_function`` uses the stored ``threshold``,
    :meth:`predict_with_exits` any other one and tells at which layer each message left.
    """

    def __init__(
        self,
        backbone: TransformerClassifier,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        branch_hidden: int = DEFAULT_BRANCH_HIDDEN,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if backbone.network is None or backbone.label_space is None:
            raise TextdistillError("early exit needs a trained transformer classifier: fit() or load() it first.")
        self.backbone = backbone
        self.layerwise = LayerwiseEncoder(backbone.network.encoder)
        self.label_space = backbone.label_space
        self.thresholds = backbone.thresholds
        self.threshold_mode, self.own_thresholds = backbone.threshold_mode, backbone.own_thresholds
        self.threshold = float(threshold)
        self.branch_hidden = int(branch_hidden)
        self.history: list[dict] = []
        self.source: str | None = None  # the backbone's directory, when loaded from one
        hidden_size, n_labels = backbone.network.head.in_features, backbone.network.head.out_features
        with torch.random.fork_rng(devices=[]):  # reproducible branches, global RNG untouched
            torch.manual_seed(seed)
            self.branches = nn.ModuleList(_branch(hidden_size, n_labels, self.branch_hidden) for _ in range(len(self.layerwise) - 1))
        self.branches.to(backbone.device)

    @property
    def n_layers(self) -> int:
        return len(self.layerwise)

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def to(self, device: str | torch.device) -> Self:
        self.backbone.device = torch.device(device)
        self.backbone.network.to(self.backbone.device)
        self.branches.to(self.backbone.device)
        return self

    # -- training --------------------------------------------------------------------------
    def _fit(self, texts, label_sets, validation=None) -> None:
        raise TextdistillError(
            "an early-exit model is not trained on labels: its branches learn from the backbone's own "
            "predictions. Use train_early_exit(backbone_dir, texts, out_dir) or EarlyExitClassifier(backbone).distil(texts)."
        )

    def distil(
        self,
        texts: Sequence[str],
        *,
        epochs: int = 3,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        temperature: float = 1.0,
        seed: int = 0,
    ) -> list[dict]:
        """Train the branches to match the final classifier on ``texts`` (self-distillation)."""
        texts = list(texts)
        if not texts:
            raise TextdistillError("early-exit training needs texts (the transfer set's messages); none were given.")
        if not self.branches:
            raise TextdistillError("a one-layer encoder has no earlier layer to exit at: early exit needs at least two layers.")
        network, multi_label = self.backbone.network, self._space().multi_label
        network.eval()
        network.requires_grad_(False)
        self.branches.train()
        token_ids = self.backbone.token_ids(texts)
        lengths = [len(ids) for ids in token_ids]
        optimizer = torch.optim.AdamW(self.branches.parameters(), lr=learning_rate, weight_decay=weight_decay)
        total = epochs * math.ceil(len(texts) / batch_size)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(total * WARMUP_RATIO), total)
        use_amp = self.device.type == "cuda"
        for epoch in range(epochs):
            started, losses = time.perf_counter(), []
            batches = batch_order(lengths, batch_size, seed, epoch)
            for rows in track(batches, f"Early-exit branches, epoch {epoch + 1}/{epochs}"):
                batch = self.backbone.collate([token_ids[i] for i in rows])
                with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                    pooled = self._pooled_layers(batch)
                    final = network.head(pooled[-1])
                pooled, final = [p.float() for p in pooled], final.float()
                loss = sum(branch_loss(branch(p), final, multi_label, temperature) for branch, p in zip(self.branches, pooled))
                loss = loss / max(len(self.branches), 1)
                loss.backward()
                nn.utils.clip_grad_norm_(self.branches.parameters(), MAX_GRAD_NORM)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
            self.history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "seconds": time.perf_counter() - started})
        self.branches.eval()
        return self.history

    def _pooled_layers(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Every layer's output pooled per message, as the head reads the last, for a whole batch (no exits)."""
        mask, windows, pooling = batch["attention_mask"], batch.get("windows"), self.backbone.network.pooling
        hidden = self.layerwise.embed(batch["input_ids"])
        context = self.layerwise.context(hidden, mask)
        pooled = []
        for k in range(self.n_layers):
            hidden = self.layerwise.layer(k, hidden, context)
            pooled.append(pool_windows(mean_pool(hidden, mask), windows, pooling))
        return pooled

    # -- prediction ------------------------------------------------------------------------
    @torch.inference_mode()
    def _exit_batch(self, batch: dict[str, torch.Tensor], threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (n, L) and 1-based exit layers (n,) of the n messages of one padded batch."""
        input_ids, mask, windows = batch["input_ids"], batch["attention_mask"], batch.get("windows")
        n, last = (input_ids if windows is None else windows).shape[0], self.n_layers - 1
        pooling = self.backbone.network.pooling
        logits = torch.empty((n, len(self._space())), device=input_ids.device)
        exits = torch.empty(n, dtype=torch.long, device=input_ids.device)
        rows = torch.arange(n, device=input_ids.device)  # original rows still in the batch
        hidden = self.layerwise.embed(input_ids)
        context = self.layerwise.context(hidden, mask)
        multi_label = self._space().multi_label
        for k in range(self.n_layers):
            hidden = self.layerwise.layer(k, hidden, context)
            pooled = pool_windows(mean_pool(hidden, mask), windows, pooling)
            if k == last:
                logits[rows] = self.backbone.network.head(pooled).float()
                exits[rows] = k + 1
                break
            if threshold <= 0:
                continue
            branch_logits = self.branches[k](pooled).float()
            leave = torch.ones_like(rows, dtype=torch.bool) if threshold >= 1 else normalised_entropy(branch_logits, multi_label) < threshold
            if not leave.any():
                continue
            logits[rows[leave]] = branch_logits[leave]
            exits[rows[leave]] = k + 1
            stay = ~leave
            if not stay.any():
                break
            kept, windows = keep_messages(windows, stay, hidden.shape[0])
            rows, hidden, mask = rows[stay], hidden[kept], mask[kept]
            width = int(mask.sum(1).max())  # right-padded: drop columns only the leavers needed
            hidden, mask = hidden[:, :width], mask[:, :width]
            context = self.layerwise.context(hidden, mask)
        return logits, exits

    def predict_with_exits(self, texts: Sequence[str], threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Logits (n, L) and the 1-based layer each message left at, for ``threshold``
        (default: the stored one), in length-sorted batches of ``predict_batch_size``."""
        threshold = self.threshold if threshold is None else float(threshold)
        self.backbone.network.eval()
        self.branches.eval()
        texts = list(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")
        logits = np.empty((len(texts), len(self._space())), dtype=np.float32)
        exits = np.empty(len(texts), dtype=np.int64)
        size = self.backbone.config.predict_batch_size
        for start in range(0, len(texts), size):
            rows = order[start : start + size]
            batch_logits, batch_exits = self._exit_batch(self.backbone.encode_batch([texts[i] for i in rows]), threshold)
            logits[rows] = batch_logits.cpu().numpy()
            exits[rows] = batch_exits.cpu().numpy()
        return logits, exits

    @torch.inference_mode()
    def branch_logits(self, texts: Sequence[str]) -> np.ndarray:
        """(n_layers, n, L): every branch's logits for every message (the last is the final head),
        in length-sorted batches of ``predict_batch_size``."""
        self.backbone.network.eval()
        self.branches.eval()
        texts = list(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((self.n_layers, len(texts), len(self._space())), dtype=np.float32)
        size = self.backbone.config.predict_batch_size
        heads = [*self.branches, self.backbone.network.head]
        for start in range(0, len(texts), size):
            rows = order[start : start + size]
            pooled = self._pooled_layers(self.backbone.encode_batch([texts[i] for i in rows]))
            for k, (head, p) in enumerate(zip(heads, pooled)):
                out[k, rows] = head(p).float().cpu().numpy()
        return out

    def branch_divergence(self, texts: Sequence[str], temperature: float = 1.0) -> list[float]:
        """Each branch's self-distillation loss against the final classifier on ``texts``."""
        logits = torch.from_numpy(self.branch_logits(texts))
        multi_label = self._space().multi_label
        return [float(branch_loss(logits[k], logits[-1], multi_label, temperature)) for k in range(self.n_layers - 1)]

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict_with_exits(texts)[0]

    def proba_from_logits(self, logits: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(logits)
        return (torch.sigmoid(tensor) if self._space().multi_label else torch.softmax(tensor, dim=1)).numpy()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.proba_from_logits(self.decision_function(texts))

    @property
    def n_params(self) -> int:
        return self.backbone.n_params + sum(p.numel() for p in self.branches.parameters())

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path, *, config: dict | None = None, training_data: dict | None = None, metrics: dict | None = None) -> Path:
        backbone = self.backbone
        config = {
            "encoder": asdict(backbone.config),
            "method": backbone.config.method,
            "early_exit": {
                "threshold": self.threshold,
                "branch_hidden": self.branch_hidden,
                "n_layers": self.n_layers,
                "backbone": self.source,
                "history": self.history,
            },
            **(config or {}),
        }
        return super().save(directory, config=config, training_data=training_data or {}, metrics=metrics)

    def _save_weights(self, directory: Path) -> None:
        self.backbone._save_weights(directory)
        save_file({name: t.detach().contiguous() for name, t in self.branches.state_dict().items()}, str(directory / BRANCHES_FILE))

    @classmethod
    def _load_weights(cls, directory: Path, manifest: Manifest) -> Self:
        settings = manifest.config.get("early_exit", {})
        backbone = TransformerClassifier._load_weights(directory, manifest)
        backbone.label_space = manifest.label_space
        backbone.thresholds = None if manifest.thresholds is None else np.asarray(manifest.thresholds)
        model = cls(
            backbone,
            threshold=settings.get("threshold", DEFAULT_THRESHOLD),
            branch_hidden=settings.get("branch_hidden", DEFAULT_BRANCH_HIDDEN),
        )
        path = directory / BRANCHES_FILE
        try:
            model.branches.load_state_dict(load_model_arrays(path, framework="pt"))
        except RuntimeError as exc:  # names each missing, unexpected or mis-shaped parameter
            raise ModelError(f"does not fit the exits its manifest describes: {exc}", file=path) from None
        model.branches.eval()
        model.history = settings.get("history", [])
        model.source = settings.get("backbone")
        return model


def train_early_exit(
    model_dir: str | Path,
    texts: Sequence[str],
    out_dir: str | Path,
    *,
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    branch_hidden: int = DEFAULT_BRANCH_HIDDEN,
    temperature: float = 1.0,
    device: str = "auto",
) -> EarlyExitClassifier:
    """Add early exits to the transformer classifier saved in ``model_dir``, train the branches
    on the unlabelled ``texts`` and save the result to ``out_dir``."""
    backbone = load_model(model_dir)
    if not isinstance(backbone, TransformerClassifier):
        raise TextdistillError(
            f"{model_dir} holds a {backbone.kind!r} model; early exit needs a transformer classifier "
            "(a teacher or a transformer student)."
        )
    model = EarlyExitClassifier(backbone, threshold=threshold, branch_hidden=branch_hidden, seed=seed).to(pick_device(device))
    model.source = str(model_dir)
    model.distil(texts, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, temperature=temperature, seed=seed)
    training = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed, "temperature": temperature}
    model.save(out_dir, config={"early_exit_training": training}, training_data=data_fingerprint(list(texts), None, None))
    return model


def exit_curve(
    model: EarlyExitClassifier,
    texts: Sequence[str],
    label_sets: Sequence[Sequence[str]],
    thresholds: Sequence[float] = DEFAULT_SWEEP,
) -> list[dict]:
    """The speed/quality trade-off across exit thresholds, one dict per threshold.

    Each has the threshold, ``accuracy`` (single-label; None for multi-label), ``micro_f1``,
    ``mean_layers``, ``exits_per_layer`` (messages that left at layer 1, 2, ...) and
    ``ms_per_message``: wall time of batched prediction over all ``texts`` divided by their number.
    """
    texts = list(texts)
    space = model._space()
    y_true = space.encode(label_sets).astype(bool)
    model.predict_with_exits(texts[: model.backbone.config.predict_batch_size], 0.0)  # warm-up
    curve = []
    for threshold in thresholds:
        started = time.perf_counter()
        logits, exits = model.predict_with_exits(texts, threshold)
        seconds = time.perf_counter() - started
        y_pred = space.encode(model.predict_label_sets(texts, model.proba_from_logits(logits))).astype(bool)
        true_positives = (y_true & y_pred).sum()
        curve.append(
            {
                "threshold": float(threshold),
                "accuracy": None if space.multi_label else float((y_true.argmax(1) == y_pred.argmax(1)).mean()),
                "micro_f1": float(2 * true_positives / max(y_true.sum() + y_pred.sum(), 1)),
                "mean_layers": float(exits.mean()),
                "exits_per_layer": np.bincount(exits, minlength=model.n_layers + 1)[1:].tolist(),
                "ms_per_message": 1000 * seconds / max(len(texts), 1),
            }
        )
    return curve
