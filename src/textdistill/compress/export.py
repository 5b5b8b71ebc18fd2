"""Export a trained model to one ONNX graph, head included (torch's TorchScript-based exporter).

Each exportable kind gives a torch module from padded ids to logits and the featurizer that
reproduces its tokenization without torch (:mod:`textdistill.compress.features`); the graph
adds the softmax (or, for multi-label models, the per-label sigmoid), so it outputs
``logits`` and ``probabilities``. Batch size and sequence length are dynamic.

- ``transformer``: the encoder, mean pooling and head as trained (adapters and all); a model that
  reads long messages in windows takes a third input, ``windows`` (messages, most windows): the
  rows of ``input_ids`` that are each message's windows, -1 past its last, which the graph's
  Gather and masked reductions pool per message as the torch model does;
- ``bilstm``: the packed LSTM becomes ONNX's LSTM with per-row sequence lengths;
- ``static``: a gather of the (head-folded) vector table, a masked mean, then the head.

Early-exit models decide per message how many layers to run, which one static graph cannot
express; the TF-IDF baseline is not a torch model. Both are refused with what to do instead.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from textdistill.compress.features import Featurizer, SubwordSequence, TokenBag, TokenSequence
from textdistill.errors import TextdistillError
from textdistill.models.base import TextClassifier
from textdistill.students.tokens import SubwordVocabulary

OPSET = 17
# Sample texts for tracing and for the parity check after export: short, long, empty, odd, and
# one long enough for several windows even of 512 tokens (an email thread of about 900 words).
PROBE_TEXTS = (
    "Where is my parcel? It was due on Monday.",
    "refund",
    "",
    "I was charged twice for the same order and nobody answers my emails. " * 6,
    "Passwort vergessen \u2013 bitte zur\u00fccksetzen \u2603",
    "cancel my subscription please",
    "Following up on the thread below. "
    + " ".join(f"On day {day} I wrote: where is my parcel? It was due on Monday, I was charged twice and nobody answers." for day in range(50)),
)


class WithProbabilities(nn.Module):
    """``network(*inputs)`` as logits, plus its softmax or per-label sigmoid."""

    def __init__(self, network: nn.Module, multi_label: bool) -> None:
        super().__init__()
        self.network = network
        self.multi_label = multi_label

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.network(*inputs)
        return logits, torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)


class StaticGraph(nn.Module):
    """A static student's numpy prediction as a torch module: masked mean of table rows, head."""

    def __init__(self, table: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], folded: bool) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.from_numpy(table), requires_grad=False)
        self.weights = nn.ParameterList([nn.Parameter(torch.from_numpy(w), requires_grad=False) for w, _ in layers])
        self.biases = nn.ParameterList([nn.Parameter(torch.from_numpy(b), requires_grad=False) for _, b in layers])
        self.folded = folded

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        present = torch.arange(input_ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
        total = (self.table[input_ids] * present.unsqueeze(-1).to(self.table.dtype)).sum(dim=1)
        x = total / lengths.clamp(min=1).unsqueeze(1).to(total.dtype)
        for k, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            if k:
                x = torch.relu(x)
            x = x + bias if k == 0 and self.folded else x @ weight.T + bias
        return x


def _transformer(model) -> tuple[nn.Module, Featurizer]:
    from tokenizers import Tokenizer

    # A copy of the tokenizer: the featurizer turns its truncation and padding off.
    backend = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
    config = model.config
    featurizer = SubwordSequence(
        SubwordVocabulary(backend),
        max_length=config.max_length,
        head_fraction=config.head_fraction,
        pad_id=int(model.tokenizer.pad_token_id),
        long_messages=config.long_messages,
        stride=config.stride,
        max_windows=config.max_windows,
    )
    return model.network, featurizer


def _bilstm(model) -> tuple[nn.Module, Featurizer]:
    return model.network, TokenSequence(model.vocabulary, max_tokens=model.config.max_tokens)


def _static(model) -> tuple[nn.Module, Featurizer]:
    return StaticGraph(*model.inference_weights()), TokenBag(model.features)


EXPORTERS = {"transformer": _transformer, "bilstm": _bilstm, "static": _static}
_REFUSED = {
    "early_exit": "an early-exit model runs a different number of layers per message, which one ONNX graph cannot express. "
    "Export the transformer it was built from, or serve the early-exit model itself",
    "baseline": "the TF-IDF baseline is a scikit-learn model and already needs no torch; serve or evaluate it as it is",
}


def _input_axes(names: tuple[str, ...]) -> dict[str, dict[int, str]]:
    """The dynamic dimensions of each input: rows are messages, or windows when a third input
    maps windows to messages."""
    rows = "windows" if "windows" in names else "batch"
    axes = {names[0]: {0: rows, 1: "tokens"}}
    axes[names[1]] = {0: "batch"} if names[1] == "lengths" else {0: rows, 1: "tokens"}
    if "windows" in names:
        axes["windows"] = {0: "batch", 1: "windows_per_message"}
    return axes


def exportable(kind: str) -> bool:
    return kind in EXPORTERS


def export_graph(model: TextClassifier, path: Path) -> Featurizer:
    """Write ``model`` as an ONNX graph to ``path``; returns the featurizer its inputs need."""
    if model.kind not in EXPORTERS:
        reason = _REFUSED.get(model.kind, f"no exporter is registered for {model.kind!r} models")
        raise TextdistillError(f"cannot export a {model.kind} model to ONNX: {reason}. Exportable: {', '.join(EXPORTERS)}.")
    network, featurizer = EXPORTERS[model.kind](model)
    wrapper = WithProbabilities(network, model.label_space.multi_label)
    device = next(network.parameters()).device
    training = network.training
    network.to("cpu").eval()
    names = featurizer.input_names
    sample = featurizer.pad(featurizer.token_ids([PROBE_TEXTS[0], PROBE_TEXTS[-1]]))
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's deprecation and LSTM batch-size notes
            torch.onnx.export(
                wrapper,
                tuple(torch.from_numpy(sample[name]) for name in names),
                str(path),
                dynamo=False,
                input_names=list(names),
                output_names=["logits", "probabilities"],
                dynamic_axes={**_input_axes(names), "logits": {0: "batch"}, "probabilities": {0: "batch"}},
                opset_version=OPSET,
                do_constant_folding=True,
            )
    finally:
        network.to(device).train(training)
    return featurizer
