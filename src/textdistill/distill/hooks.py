"""Read intermediate outputs of named submodules with forward hooks, without rewriting ``forward()``
(torchdistill's forward-hook manager).

Which to use:

- A Hugging Face encoder returns every layer's output with ``output_hidden_states=True``
  (index 0 the embeddings) and the attention probabilities with ``output_attentions=True`` (only
  with ``attn_implementation="eager"``). When a loss needs whole-layer outputs, use those flags.
- :class:`HiddenStateRecorder` is for what the flags do not give: outputs of sublayers
  (``encoder.layer.3.attention.output``, a feed-forward block), a few chosen layers without
  keeping every layer's tensor, and students that are not Hugging Face models (the BiLSTM's
  ``lstm``). It works on the model inside any container, such as ``EncoderNetwork``.

    with HiddenStateRecorder(network, layer_paths(network, embeddings=True)) as recorder:
        logits = network(**batch)
    hidden = recorder.outputs        # [embeddings, layer 1, ..., layer N], like hidden_states
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from textdistill.errors import TextdistillError
from textdistill.tuning.freeze import transformer_layers


def layer_paths(model: nn.Module, *, embeddings: bool = False) -> list[str]:
    """Module paths of the transformer layers of the outermost BERT / MPNet / DistilBERT-like
    encoder in ``model``, bottom first, relative to ``model``; with ``embeddings=True`` the
    embeddings module's path comes first, so that recorded outputs line up with ``hidden_states``."""
    names = {id(module): name for name, module in model.named_modules()}
    for _, module in model.named_modules():
        try:
            layers = transformer_layers(module)
        except ValueError:
            continue
        paths = [f"{names[id(layers)]}.{index}" for index in range(len(layers))]
        if embeddings:
            paths.insert(0, names[id(getattr(module, "base_model", module).embeddings)])
        return paths
    raise TextdistillError(
        f"found no transformer layers in {type(model).__name__}: layer_paths knows encoders with layers at "
        "encoder.layer or transformer.layer (BERT, RoBERTa, MPNet, DistilBERT and the like); name the modules to record instead"
    )


class HiddenStateRecorder:
    """Records the outputs of the submodules at ``paths`` (e.g. ``encoder.layer.3``) while active.

    Use it as a context manager: hooks are registered on entry and removed on exit. Each forward
    pass inside overwrites the recorded outputs; ``outputs`` lists them in the order of ``paths``
    (the first element when a module returns a tuple or a ``ModelOutput``, as transformer layers
    and LSTMs do). Outputs are not detached: a student's keep their gradients.
    """

    def __init__(self, model: nn.Module, paths: Sequence[str], index: int = 0) -> None:
        self.paths = list(paths)
        self.index = index  # which element of a tuple output to keep (1: a self-attention's probabilities)
        self.modules = [_submodule(model, path) for path in self.paths]
        self._recorded: dict[str, Tensor] = {}
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> HiddenStateRecorder:
        if self._handles:
            raise RuntimeError("this HiddenStateRecorder is already recording")
        self._recorded = {}
        self._handles = [module.register_forward_hook(partial(self._record, path)) for path, module in zip(self.paths, self.modules)]
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _record(self, path: str, module: nn.Module, args: tuple, output) -> None:
        if hasattr(output, "to_tuple"):  # a Hugging Face ModelOutput
            output = output.to_tuple()
        if isinstance(output, tuple):
            output = output[self.index] if len(output) > self.index else None
        self._recorded[path] = output

    @property
    def outputs(self) -> list[Tensor]:
        """The recorded outputs, one per path, in the order of ``paths``."""
        missing = [path for path in self.paths if self._recorded.get(path) is None]
        if missing:
            raise RuntimeError(
                f"nothing recorded for {', '.join(missing)}: run the forward pass inside `with recorder:` "
                "(for attention probabilities, the model must use eager attention)"
            )
        return [self._recorded[path] for path in self.paths]


def _submodule(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        children = ", ".join(name for name, _ in model.named_children())
        raise TextdistillError(
            f"{type(model).__name__} has no submodule {path!r} (its top-level modules: {children}); "
            "module paths are dotted attribute names, as in model.named_modules(); layer_paths(model) lists the transformer layers"
        ) from None
