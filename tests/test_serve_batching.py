"""The micro-batcher: merges concurrent requests, splits big ones, keeps order, isolates failures, drains on stop."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from textdistill.serve.batching import BatcherClosed, MicroBatcher


class RecordingModel:
    """Upper-cases texts, records each batch it gets; fails on a batch holding ``fail_on``."""

    def __init__(self, fail_on: str | None = None, delay_s: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on
        self.delay_s = delay_s

    def __call__(self, texts: list[str]) -> list[str]:
        self.batches.append(list(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        if self.fail_on in texts:
            raise ValueError(f"cannot score {self.fail_on!r}")
        return [t.upper() for t in texts]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=30))


async def started(model, **settings) -> MicroBatcher:
    batcher = MicroBatcher(model, **settings)
    await batcher.start()
    return batcher


def test_concurrent_small_requests_share_one_model_call_and_each_gets_its_own_results():
    model = RecordingModel()

    async def scenario():
        batcher = await started(model, max_batch=64, max_wait_ms=200)
        requests = [[f"r{i}a", f"r{i}b"] for i in range(10)]
        results = await asyncio.gather(*(batcher.submit(texts) for texts in requests))
        await batcher.stop()
        return requests, results

    requests, results = run(scenario())
    assert [len(batch) for batch in model.batches] == [20]
    assert results == [[t.upper() for t in texts] for texts in requests]


def test_without_a_wait_messages_queued_while_the_model_runs_share_its_next_call():
    model = RecordingModel(delay_s=0.2)

    async def scenario():
        batcher = await started(model, max_batch=64, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit(["first"]))
        await asyncio.sleep(0.05)  # the model is busy with "first" now
        rest = [batcher.submit([f"r{i}"]) for i in range(6)]
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results

    results = run(scenario())
    assert [len(batch) for batch in model.batches] == [1, 6]
    assert results == [["FIRST"], *[[f"R{i}"] for i in range(6)]]


def test_a_request_larger_than_max_batch_is_split_in_order():
    model = RecordingModel()

    async def scenario():
        batcher = await started(model, max_batch=4, max_wait_ms=0)
        result = await batcher.submit([f"t{i}" for i in range(10)])
        await batcher.stop()
        return result

    assert run(scenario()) == [f"T{i}" for i in range(10)]
    assert [len(batch) for batch in model.batches] == [4, 4, 2]
    assert [t for batch in model.batches for t in batch] == [f"t{i}" for i in range(10)]


def test_a_lone_request_waits_at_most_max_wait_ms():
    model = RecordingModel()

    async def scenario():
        batcher = await started(model, max_batch=64, max_wait_ms=50)
        start = time.perf_counter()
        result = await batcher.submit(["only"])
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return result, elapsed

    result, elapsed = run(scenario())
    assert result == ["ONLY"] and model.batches == [["only"]]
    assert 0.04 <= elapsed < 2.0


def test_a_model_error_fails_only_the_requests_in_that_batch():
    model = RecordingModel(fail_on="boom")

    async def scenario():
        batcher = await started(model, max_batch=2, max_wait_ms=50)
        outcomes = await asyncio.gather(
            batcher.submit(["a1", "a2"]), batcher.submit(["boom", "b2"]), batcher.submit(["c1", "c2"]), return_exceptions=True
        )
        after = await batcher.submit(["later"])  # the batcher survives a failed batch
        await batcher.stop()
        return outcomes, after

    (a, b, c), after = run(scenario())
    assert a == ["A1", "A2"] and c == ["C1", "C2"] and after == ["LATER"]
    assert isinstance(b, ValueError) and "boom" in str(b)
    assert model.batches == [["a1", "a2"], ["boom", "b2"], ["c1", "c2"], ["later"]]


def test_a_request_spread_over_batches_fails_when_one_of_its_batches_fails_and_its_rest_is_skipped():
    model = RecordingModel(fail_on="x1")

    async def scenario():
        batcher = await started(model, max_batch=2, max_wait_ms=0)
        outcome = await asyncio.gather(batcher.submit(["x0", "x1", "x2", "x3", "x4"]), return_exceptions=True)
        await batcher.stop()
        return outcome[0]

    assert isinstance(run(scenario()), ValueError)
    assert model.batches == [["x0", "x1"]]


def test_the_model_runs_in_a_worker_thread_and_the_event_loop_stays_responsive():
    model = RecordingModel(delay_s=0.3)
    executor = ThreadPoolExecutor(1, thread_name_prefix="model-worker")

    async def scenario():
        batcher = await started(model, max_batch=8, max_wait_ms=0, executor=executor)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        result = await batcher.submit(["slow"])
        task.cancel()
        await batcher.stop()
        return result, ticks

    result, ticks = run(scenario())
    executor.shutdown()
    assert result == ["SLOW"]
    assert model.threads == {"model-worker_0"}
    assert ticks >= 10  # the loop kept running while the model slept for 0.3 s


def test_stop_answers_every_queued_message_then_refuses_new_ones():
    model = RecordingModel(delay_s=0.05)

    async def scenario():
        batcher = await started(model, max_batch=2, max_wait_ms=0)
        pending = [asyncio.create_task(batcher.submit([f"m{i}", f"n{i}"])) for i in range(5)]
        await asyncio.sleep(0)  # the requests are queued
        assert batcher.pending == 10
        await batcher.stop()
        results = [task.result() for task in pending]  # all done by the time stop() returns
        with pytest.raises(BatcherClosed):
            await batcher.submit(["too late"])
        return results, batcher.pending

    results, pending_after = run(scenario())
    assert results == [[f"M{i}", f"N{i}"] for i in range(5)]
    assert pending_after == 0


def test_a_cancelled_request_is_not_predicted():
    model = RecordingModel(delay_s=0.2)

    async def scenario():
        batcher = await started(model, max_batch=1, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit(["first"]))
        await asyncio.sleep(0.05)  # the model is busy with "first"
        second = asyncio.create_task(batcher.submit(["second"]))
        await asyncio.sleep(0)
        second.cancel()
        await batcher.stop()
        return await first

    assert run(scenario()) == ["FIRST"]
    assert model.batches == [["first"]]


def test_a_wrong_number_of_results_is_an_error_not_a_silent_mismatch():
    async def scenario():
        batcher = await started(lambda texts: texts[:-1], max_batch=8, max_wait_ms=0)
        with pytest.raises(RuntimeError, match="2 results for 3 inputs"):
            await batcher.submit(["a", "b", "c"])
        await batcher.stop()

    run(scenario())
