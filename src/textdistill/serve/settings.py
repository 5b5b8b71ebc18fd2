"""How the prediction service answers: request limits, the oversize policy, micro-batching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textdistill.errors import TextdistillError

OversizePolicy = Literal["reject", "truncate"]


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of ``POST /predict``.

    ``max_messages`` and ``max_request_mb`` bound one request; a text longer than
    ``max_text_chars`` (Unicode code points) is refused with 413 under ``oversize="reject"``, or
    cut to that length and flagged ``truncated`` under ``"truncate"``. Messages of concurrent
    requests are predicted together, up to ``max_batch`` per model call, waiting at most
    ``max_wait_ms`` for a batch to fill. The default 0 waits for nothing and still batches: the
    messages that queue while the model runs go into its next call, so a busy server batches
    and an idle one answers at once (on BANKING77 a static student answered a lone client in
    1.3 ms at 0 against 8.6 ms at 5 ms, and served more requests/s at 8 and 32 clients too). ``threads`` caps the model's CPU threads (None: the
    libraries' defaults).
    """

    max_messages: int = 256
    max_text_chars: int = 10_000
    oversize: OversizePolicy = "reject"
    max_request_mb: float = 32.0
    max_batch: int = 64
    max_wait_ms: float = 0.0
    threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_messages", "max_text_chars", "max_batch"):
            if getattr(self, name) < 1:
                raise TextdistillError(f"serve setting {name} must be at least 1, not {getattr(self, name)}.")
        if self.threads is not None and self.threads < 1:
            raise TextdistillError(f"serve setting threads must be at least 1, not {self.threads}.")
        if self.max_wait_ms < 0:
            raise TextdistillError(f"serve setting max_wait_ms must be 0 or more, not {self.max_wait_ms}.")
        if self.max_request_mb <= 0:
            raise TextdistillError(f"serve setting max_request_mb must be positive, not {self.max_request_mb}.")
        if self.oversize not in ("reject", "truncate"):
            raise TextdistillError(f"serve setting oversize must be 'reject' or 'truncate', not {self.oversize!r}.")

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)
