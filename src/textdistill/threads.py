"""Thread limits for inference: BLAS/OpenMP, torch, and runtimes that read the limit themselves.

Kept free of heavy imports so that torch-free models (static, ONNX) can use it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

from textdistill.errors import TextdistillError

_limit: int | None = None  # the innermost limit_threads block's count


def effective_threads(threads: int | None) -> int:
    """``threads``, or all logical cores when None; at least 1."""
    effective = (os.cpu_count() or 1) if threads is None else threads
    if effective < 1:
        raise TextdistillError(f"threads must be at least 1, not {effective}.")
    return effective


@contextmanager
def limit_threads(threads: int | None) -> Iterator[int]:
    """Run the block with BLAS/OpenMP (via threadpoolctl) and, if torch is already imported,
    torch intra-op threads set to ``threads`` (all logical cores when None); restore on exit.

    Yields the thread count in force. The limit is applied explicitly even for None, so the
    count reported is the count used. Libraries loaded inside the block are not limited by it;
    set ``OMP_NUM_THREADS`` before they load for that. Runtimes with thread pools of their own
    (ONNX Runtime sessions) read :func:`thread_limit` when they start a session.
    """
    global _limit
    effective = effective_threads(threads)
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    outer, _limit = _limit, effective
    try:
        with threadpool_limits(limits=effective):
            if torch is not None:
                torch.set_num_threads(effective)
            yield effective
    finally:
        _limit = outer
        if torch is not None:
            torch.set_num_threads(previous)


def thread_limit() -> int | None:
    """The thread count of the innermost :func:`limit_threads` block in force, else None."""
    return _limit


def set_thread_limit(threads: int | None) -> None:
    """Set what :func:`thread_limit` answers outside any block: for a process or worker thread
    that runs models for its whole life (the server's model thread)."""
    global _limit
    _limit = None if threads is None else effective_threads(threads)
