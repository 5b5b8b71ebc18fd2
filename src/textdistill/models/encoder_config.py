"""Settings of a transformer classifier, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass

LONG_MESSAGES = ("windows", "head_tail")
WINDOW_POOLINGS = ("mean", "max", "mean_max")
# What a manifest without ``long_messages`` meant: it was saved before windows existed.
SAVED_BEFORE_WINDOWS = "head_tail"


@dataclass(frozen=True)
class EncoderConfig:
    """What the classifier is built from and how it reads text.

    A message longer than ``max_length`` tokens is read either in overlapping ``windows`` of
    ``max_length`` tokens (special tokens in each), one every ``stride`` text tokens (default: 3/4
    of the text tokens a window holds), at most ``max_windows`` of them (beyond: the first
    ``max_windows - 1`` and the last), their pooled features combined by ``window_pooling``; or,
    with ``head_tail``, cut to its first ``head_fraction`` and its end.
    """

    model: str = "minilm-l6"  # alias, local directory or hub id
    method: str = "full"  # full | freeze:K | bitfit | adapter[:SIZE] | lora[:RANK] | head
    max_length: int = 128
    head_fraction: float = 0.25  # head_tail: share of max_length kept from the start of a long message
    dropout: float = 0.1
    predict_batch_size: int = 64
    long_messages: str = "windows"  # windows | head_tail
    stride: int | None = None  # windows: text tokens from one window's start to the next's
    max_windows: int = 16  # windows: most windows read per message
    window_pooling: str = "mean"  # windows: mean | max | mean_max (mean_max doubles the head's input)

    def __post_init__(self) -> None:
        if self.long_messages not in LONG_MESSAGES:
            raise ValueError(f"long_messages is {self.long_messages!r}; choose one of: {', '.join(LONG_MESSAGES)}")
        if self.window_pooling not in WINDOW_POOLINGS:
            raise ValueError(f"window_pooling is {self.window_pooling!r}; choose one of: {', '.join(WINDOW_POOLINGS)}")
        if isinstance(self.max_windows, bool) or not isinstance(self.max_windows, int) or self.max_windows < 2:
            raise ValueError(
                f"max_windows is {self.max_windows!r}; give a whole number of at least 2 "
                "(the first windows and the last), or long_messages = 'head_tail' for one cut per message"
            )
        if self.stride is not None and (isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1):
            raise ValueError(f"stride is {self.stride!r}; give a whole number of tokens, at least 1 (or leave it out for 3/4 of a window)")

    @property
    def windows(self) -> bool:
        """Whether long messages are read in several windows."""
        return self.long_messages == "windows"

    @property
    def pooling(self) -> str:
        """How a message's window features become one: ``window_pooling``, or ``mean`` (of the one
        row) when messages are cut to head and tail."""
        return self.window_pooling if self.windows else "mean"

    def long_message_settings(self) -> dict:
        """The settings that decide how a long message is read (for manifests, reports, caches)."""
        if not self.windows:
            return {"long_messages": self.long_messages, "max_length": self.max_length, "head_fraction": self.head_fraction}
        keys = ("long_messages", "max_length", "stride", "max_windows", "window_pooling")
        return {key: getattr(self, key) for key in keys}

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def from_saved(cls, data: dict) -> EncoderConfig:
        """The config a manifest recorded; one saved before windows existed reads head and tail,
        as the model was trained to."""
        return cls.from_dict({"long_messages": SAVED_BEFORE_WINDOWS, **data})
