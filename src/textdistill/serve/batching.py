"""Micro-batching: the messages of concurrent requests share one model call.

Requests put their messages on a queue, one per item. A single batcher task takes up to
``max_batch`` of them, waiting at most ``max_wait_ms`` after the first for more, runs the model
once on them in a worker thread (the event loop stays free to take requests meanwhile), and
hands each request its results once all of its messages are done. A request with more than
``max_batch`` messages is spread over consecutive batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger(__name__)


class BatcherClosed(RuntimeError):
    """The batcher is stopping or stopped and takes no new messages."""


@dataclass
class _Request:
    future: asyncio.Future
    results: list
    remaining: int


@dataclass
class _Item:
    request: _Request
    position: int
    payload: Any


class _Stop:
    """Queued by ``stop()`` behind every message already taken."""


class MicroBatcher(Generic[T, R]):
    """Runs ``predict`` (a list of inputs -> one result per input) on batches gathered from
    concurrent ``submit`` calls. ``executor`` runs ``predict`` (default: the loop's default
    executor); give it a single worker to keep model calls one at a time."""

    def __init__(
        self,
        predict: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 64,
        max_wait_ms: float = 0.0,
        executor: Executor | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.executor = executor
        self._queue: asyncio.Queue[_Item | _Stop] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._pending = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._closed

    @property
    def pending(self) -> int:
        """Messages submitted and not answered yet (queued or being predicted)."""
        return self._pending

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="textdistill-batcher")

    async def stop(self) -> None:
        """Take no new messages, finish every queued one, then end the batcher task."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(_Stop())
        if self._task is not None:
            await self._task

    async def submit(self, inputs: Sequence[T]) -> list[R]:
        """The results for ``inputs``, in order; raises what ``predict`` raised on their batch."""
        if self._closed or self._task is None:
            raise BatcherClosed("the prediction service is shutting down")
        if not inputs:
            return []
        request = _Request(asyncio.get_running_loop().create_future(), [None] * len(inputs), len(inputs))
        for position, payload in enumerate(inputs):
            self._queue.put_nowait(_Item(request, position, payload))
        self._pending += len(inputs)
        try:
            return await request.future
        finally:
            self._pending -= len(inputs)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            batch: list[_Item] = []
            deadline = None
            while len(batch) < self.max_batch:
                if not self._queue.empty() or deadline is None:
                    item = await self._queue.get()
                else:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), timeout)
                    except TimeoutError:
                        break
                if isinstance(item, _Stop):
                    stopping = True
                    break
                if item.request.future.done():  # cancelled, or failed in an earlier batch
                    continue
                batch.append(item)
                if deadline is None:
                    deadline = loop.time() + self.max_wait_ms / 1000
            if batch:
                await self._predict(loop, batch)

    async def _predict(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        try:
            results = await loop.run_in_executor(self.executor, self.predict, [item.payload for item in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"predict returned {len(results)} results for {len(batch)} inputs")
        except Exception as error:
            logger.exception("prediction failed on a batch of %d messages", len(batch))
            for request in {id(item.request): item.request for item in batch}.values():
                if not request.future.done():
                    request.future.set_exception(error)
            return
        for item, result in zip(batch, results):
            request = item.request
            if request.future.done():
                continue
            request.results[item.position] = result
            request.remaining -= 1
            if request.remaining == 0:
                request.future.set_result(request.results)
