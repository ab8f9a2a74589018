"""MicroBatcher with a recording `process`: gathering, bounds, isolation, draining."""

import threading
import time

import pytest

from spacy_modernbert.serve.batcher import Closed, MicroBatcher, QueueFull


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: str = None):
        self.calls = []
        self.delay = delay
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, texts, options):
        self.gate.wait(10)
        self.calls.append(list(texts))
        if self.fail_on is not None and self.fail_on in texts:
            raise ValueError(f"cannot process {self.fail_on!r}")
        time.sleep(self.delay)
        return [(t.upper(), o) for t, o in zip(texts, options)]


def test_concurrent_jobs_share_a_batch_and_get_their_own_results():
    rec = Recorder()
    rec.gate.clear()  # hold the worker on the first job so the others queue up
    batcher = MicroBatcher(rec, max_batch_docs=64, max_wait_ms=50).start()
    first = batcher.submit(["zero"])
    time.sleep(0.1)
    futures = [batcher.submit([f"a{i}", f"b{i}"], options=i) for i in range(10)]
    rec.gate.set()
    assert first.result(10) == [("ZERO", None)]
    for i, future in enumerate(futures):
        assert future.result(10) == [(f"A{i}", i), (f"B{i}", i)]
    batcher.close(10)
    assert len(rec.calls) == 2  # the held job, then the 10 queued jobs together
    assert rec.calls[1] == [t for i in range(10) for t in (f"a{i}", f"b{i}")]


def test_batches_never_exceed_max_batch_docs_nor_split_a_job():
    rec = Recorder()
    rec.gate.clear()
    batcher = MicroBatcher(rec, max_batch_docs=5, max_wait_ms=1).start()
    batcher.submit(["hold"])
    time.sleep(0.1)
    futures = [batcher.submit([f"{i}-{j}" for j in range(3)]) for i in range(4)] + [
        batcher.submit(["x"] * 7)
    ]
    rec.gate.set()
    for future in futures:
        assert len(future.result(10)) in (3, 7)
    batcher.close(10)
    sizes = [len(call) for call in rec.calls[1:]]
    assert sizes == [3, 3, 3, 3, 7]  # 3 + 3 > 5; the 7-doc job runs alone


def test_full_queue_is_refused_with_retry_after_and_frees_up():
    rec = Recorder()
    rec.gate.clear()
    batcher = MicroBatcher(rec, max_queued_chars=10).start()
    held = batcher.submit(["123456"])
    with pytest.raises(QueueFull) as info:
        batcher.submit(["12345"])
    assert info.value.retry_after >= 1 and "--max-queued-chars" in str(info.value)
    assert batcher.submit(["1234"])  # still fits
    rec.gate.set()
    held.result(10)
    time.sleep(0.05)
    batcher.submit(["1234567"]).result(10)  # the queue drained
    assert batcher.stats()["queued_chars"] == 0
    batcher.close(10)


def test_an_oversized_job_is_accepted_when_the_queue_is_empty():
    batcher = MicroBatcher(Recorder(), max_queued_chars=3).start()
    assert batcher.submit(["abcdef"]).result(10) == [("ABCDEF", None)]
    batcher.close(10)


def test_a_failing_job_fails_alone():
    rec = Recorder(fail_on="boom")
    rec.gate.clear()
    batcher = MicroBatcher(rec, max_wait_ms=50).start()
    hold = batcher.submit(["hold"])
    time.sleep(0.1)
    good, bad, good2 = batcher.submit(["a"]), batcher.submit(["boom", "b"]), batcher.submit(["c"])
    rec.gate.set()
    assert (
        hold.result(10) and good.result(10) == [("A", None)] and good2.result(10) == [("C", None)]
    )
    with pytest.raises(ValueError, match="boom"):
        bad.result(10)
    batcher.close(10)


def test_cancelled_jobs_are_not_processed():
    rec = Recorder()
    rec.gate.clear()
    batcher = MicroBatcher(rec, max_queued_chars=100).start()
    batcher.submit(["hold"])
    time.sleep(0.1)
    gone = batcher.submit(["cancelled"])
    assert gone.cancel()
    rec.gate.set()
    batcher.submit(["after"]).result(10)
    batcher.close(10)
    assert ["cancelled"] not in rec.calls and all("cancelled" not in call for call in rec.calls)
    assert batcher.stats()["queued_chars"] == 0


def test_close_finishes_accepted_jobs_then_refuses():
    rec = Recorder(delay=0.05)
    batcher = MicroBatcher(rec, max_batch_docs=2, max_wait_ms=0).start()
    futures = [batcher.submit([f"t{i}"]) for i in range(8)]
    batcher.close(30)
    assert [f.result(0) for f in futures] == [[(f"T{i}", None)] for i in range(8)]
    with pytest.raises(Closed):
        batcher.submit(["late"])


def test_a_lone_client_does_not_wait_for_company():
    # max_wait is a minute: sequential jobs would hang if each waited for more jobs
    batcher = MicroBatcher(Recorder(), max_wait_ms=60_000).start()
    for i in range(3):
        assert batcher.submit([f"t{i}"]).result(30) == [(f"T{i}", None)]
    batcher.close(10)


def test_a_shared_batch_waits_for_more_jobs():
    rec = Recorder()
    rec.gate.clear()
    batcher = MicroBatcher(rec, max_wait_ms=60_000, max_batch_docs=4).start()
    batcher.submit(["hold"])
    time.sleep(0.1)
    first = [batcher.submit(["a"]), batcher.submit(["b"])]
    rec.gate.set()
    for future in first:
        future.result(30)  # a shared batch of two: the next one waits for company
    late = [batcher.submit([x]) for x in "cdef"]
    for future in late:
        future.result(30)  # four docs fill the batch: no need to wait the full minute
    batcher.close(10)
    assert rec.calls == [["hold"], ["a", "b"], ["c", "d", "e", "f"]]


def test_asyncio_jobs_of_a_batch_resolve_in_one_loop_callback():
    """submit_async: a batch's futures are resolved by one call_soon_threadsafe, each with its own results;
    a future resolved or cancelled on the loop before the worker takes its job drops the job."""
    import asyncio

    async def main():
        loop = asyncio.get_running_loop()
        rec = Recorder()
        rec.gate.clear()
        batcher = MicroBatcher(
            rec, max_batch_docs=64, max_wait_ms=50, max_queued_chars=1000
        ).start()
        hold = batcher.submit_async(["hold"])
        await asyncio.sleep(0.1)  # the worker holds the first batch
        futures = [batcher.submit_async([f"a{i}"], options=i) for i in range(8)]
        expired, cancelled = batcher.submit_async(["expired"]), batcher.submit_async(["cancelled"])
        expired.set_exception(TimeoutError("budget"))
        cancelled.cancel()
        calls = []
        original = loop.call_soon_threadsafe
        loop.call_soon_threadsafe = lambda *args, **kwargs: (
            calls.append(args[0]),
            original(*args, **kwargs),
        )[1]
        try:
            rec.gate.set()
            assert await hold == [("HOLD", None)]
            assert await asyncio.gather(*futures) == [[(f"A{i}", i)] for i in range(8)]
        finally:
            loop.call_soon_threadsafe = original
            await loop.run_in_executor(None, batcher.close, 10)
        assert [c.__name__ for c in calls] == [
            "_resolve",
            "_resolve",
        ]  # one per batch, not one per job
        assert rec.calls == [["hold"], [f"a{i}" for i in range(8)]]
        assert batcher.stats()["queued_chars"] == 0

    asyncio.run(main())
