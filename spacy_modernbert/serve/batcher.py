"""Micro-batching: concurrent requests become one `nlp.pipe` call on one worker thread.

Why: one request at a time wastes the batching that makes the encoder fast (padding-free
packing of many short docs into one forward pass). The event loop hands each request's
texts to `submit_async`, which returns an `asyncio.Future` of the running loop (`submit`
returns a `concurrent.futures.Future`, for callers on other threads); a single worker thread takes
the queued jobs that fit, waits at most `max_wait_ms` for more while the batch has fewer
than `max_batch_docs` docs (only when the previous batch was shared by several requests:
no delay for a lone client), and runs the whole batch through `process` (the app passes
`nlp.pipe` plus serialization), then resolves every job's future with its own results:
the asyncio futures of one batch with a single `call_soon_threadsafe` per event loop (one
wake-up of the loop per batch, not one per request: with a small encoder the per-request
event-loop work is what bounds throughput under concurrency).

Invariants:
* One thread calls the pipeline, so the Hugging Face fast tokenizer (not thread-safe,
  "Already borrowed") is never entered twice at once.
* A job is never split across batches and its results come back in its own order.
* Queued work is bounded: `submit` raises `QueueFull` (the app answers 503 with
  Retry-After) when the characters of accepted, unfinished jobs would exceed
  `max_queued_chars`, so a burst cannot grow memory without bound.
* A batch that raises is retried job by job, so one bad document fails only its own request.
* A job whose future was cancelled or already resolved before the worker took it (the
  client's time budget ran out, or it went away) is dropped without being processed.
* `close()` stops accepting, finishes every accepted job, then joins the thread (graceful
  shutdown: nothing accepted is lost).
"""

import asyncio
import collections
import math
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple


class QueueFull(Exception):
    """The queued work is at its limit; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Closed(Exception):
    """The batcher is shutting down and accepts no new work."""


class _Job:
    """One request's texts; exactly one of `future` (threads) and `afuture` (asyncio) is set."""

    __slots__ = ("texts", "options", "future", "afuture", "loop", "chars")

    def __init__(
        self, texts: List[str], options: Any, loop: Optional[asyncio.AbstractEventLoop] = None
    ):
        self.texts = texts
        self.options = options
        self.loop = loop
        self.future: Optional[Future] = None if loop is not None else Future()
        self.afuture: Optional[asyncio.Future] = loop.create_future() if loop is not None else None
        self.chars = sum(len(t) for t in texts)

    def take(self) -> bool:
        """Mark the job started (worker thread, lock held); False if its client gave up."""
        if self.future is not None:
            return self.future.set_running_or_notify_cancel()
        return not self.afuture.done()  # done before taken: cancelled or timed out on the loop


def _resolve(items: List[Tuple[asyncio.Future, bool, Any]]) -> None:
    """Runs on the event loop: one call resolves every asyncio future of a batch."""
    for future, ok, value in items:
        if not future.done():  # it may have timed out or been cancelled meanwhile
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


# process(texts, options_per_text) -> one result per text, in order
ProcessFn = Callable[[List[str], List[Any]], List[Any]]


class MicroBatcher:
    def __init__(
        self,
        process: ProcessFn,
        *,
        max_batch_docs: int = 64,
        max_wait_ms: float = 2.0,
        max_queued_chars: int = 2_000_000,
    ):
        if max_batch_docs < 1 or max_wait_ms < 0 or max_queued_chars < 1:
            raise ValueError(
                "max_batch_docs and max_queued_chars must be positive and max_wait_ms >= 0"
            )
        self.process = process
        self.max_batch_docs = max_batch_docs
        self.max_wait = max_wait_ms / 1000.0
        self.max_queued_chars = max_queued_chars
        self._queue: Deque[_Job] = collections.deque()
        self._cond = threading.Condition()
        self._queued_chars = 0  # accepted and not yet finished (queued or in the running batch)
        self._closing = False
        self._chars_per_s = 0.0  # moving average of throughput, for Retry-After
        self._thread: Optional[threading.Thread] = None
        self._last_batch_jobs = 0
        self.batches = 0  # number of process calls (tests and /health read it)
        self.docs = 0

    # -- the event loop's side -------------------------------------------------------------
    def start(self) -> "MicroBatcher":
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="spacy-modernbert-batcher", daemon=True
            )
            self._thread.start()
        return self

    def submit(self, texts: List[str], options: Any = None) -> Future:
        """Queue `texts` (one request); the future resolves to their results, in order."""
        return self._enqueue(_Job(list(texts), options)).future

    def submit_async(self, texts: List[str], options: Any = None) -> asyncio.Future:
        """`submit` for the running event loop: an asyncio future, resolved on that loop.

        Cancelling it, or resolving it from the loop (a time budget), before the worker
        takes the job drops the job unprocessed.
        """
        return self._enqueue(_Job(list(texts), options, asyncio.get_running_loop())).afuture

    def _enqueue(self, job: _Job) -> _Job:
        with self._cond:
            if self._closing:
                raise Closed("The server is shutting down")
            if self._queued_chars + job.chars > self.max_queued_chars and self._queued_chars > 0:
                raise QueueFull(
                    f"The server is busy: {self._queued_chars} characters are queued and the limit is "
                    f"{self.max_queued_chars} (serve --max-queued-chars); retry later",
                    self._retry_after(),
                )
            self._queued_chars += job.chars
            self._queue.append(job)
            self._cond.notify()
        return job

    def close(self, timeout: Optional[float] = None) -> None:
        """Refuse new work, finish all accepted jobs, stop the worker thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def closing(self) -> bool:
        return self._closing

    def stats(self) -> dict:
        with self._cond:
            return {
                "queued_requests": len(self._queue),
                "queued_chars": self._queued_chars,
                "max_queued_chars": self.max_queued_chars,
                "batches": self.batches,
                "docs": self.docs,
            }

    def _retry_after(self) -> int:
        if self._chars_per_s <= 0:
            return 1
        return max(1, min(60, math.ceil(self._queued_chars / self._chars_per_s)))

    # -- the worker thread's side ----------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            start = time.perf_counter()
            outcomes = self._process(batch)
            elapsed = time.perf_counter() - start
            chars = sum(job.chars for job in batch)
            with self._cond:  # account before answering, so a client never sees its own work queued
                self._queued_chars -= chars
                self.batches += 1
                self.docs += _n_docs(batch)
                if elapsed > 0 and chars:
                    rate = chars / elapsed
                    self._chars_per_s = (
                        rate if self._chars_per_s == 0 else 0.8 * self._chars_per_s + 0.2 * rate
                    )
            by_loop: Dict[asyncio.AbstractEventLoop, List[Tuple[asyncio.Future, bool, Any]]] = {}
            for job, (ok, value) in zip(batch, outcomes):
                if job.future is None:
                    by_loop.setdefault(job.loop, []).append((job.afuture, ok, value))
                elif ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)
            for loop, items in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_resolve, items)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    pass

    def _take_batch(self) -> Optional[List[_Job]]:
        """The next batch: the queued jobs that fit, plus what arrives within max_wait."""
        with self._cond:
            batch: List[_Job] = []
            while not batch:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:  # closing and drained
                    return None
                self._take_fitting(batch)
            # wait for more only under concurrency (the last batch was shared): a lone client
            # pays no batching delay, and concurrent ones queue up during each batch anyway
            deadline = time.perf_counter() + (self.max_wait if self._last_batch_jobs > 1 else 0.0)
            while _n_docs(batch) < self.max_batch_docs and not self._closing:
                if self._queue:
                    if not self._take_fitting(batch):
                        break
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._last_batch_jobs = len(batch)
            return batch

    def _take_fitting(self, batch: List[_Job]) -> bool:
        """Move queued jobs into `batch` while they fit (caller holds the lock).

        The first job of a batch always fits, however many texts it has. Jobs cancelled
        before they were taken are dropped. False when the next job does not fit.
        """
        n_docs = _n_docs(batch)
        while self._queue:
            job = self._queue[0]
            if batch and n_docs + len(job.texts) > self.max_batch_docs:
                return False
            self._queue.popleft()
            if not job.take():
                self._queued_chars -= job.chars  # the client gave up; nothing to do
                continue
            batch.append(job)
            n_docs += len(job.texts)
        return True

    def _process(self, batch: List[_Job]) -> List[Tuple[bool, Any]]:
        """(True, results) or (False, exception) per job; a failing batch is retried job by job."""
        texts = [text for job in batch for text in job.texts]
        options = [job.options for job in batch for _ in job.texts]
        try:
            results = self.process(texts, options)
        except Exception as err:
            if len(batch) == 1:
                return [(False, err)]
            outcomes = []
            for job in batch:  # isolate the job that fails
                try:
                    outcomes.append((True, self.process(job.texts, [job.options] * len(job.texts))))
                except Exception as job_err:
                    outcomes.append((False, job_err))
            return outcomes
        outcomes, offset = [], 0
        for job in batch:
            outcomes.append((True, results[offset : offset + len(job.texts)]))
            offset += len(job.texts)
        return outcomes


def _n_docs(batch: List[_Job]) -> int:
    return sum(len(job.texts) for job in batch)
