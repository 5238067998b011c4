"""Model calls off the event loop: a bounded queue drained by a few worker threads.

The event loop only parses and validates requests; every call that touches a model is a job
put on one queue. A job waits at most behind ``max_pending`` others: when the queue is full,
:meth:`InferenceQueue.submit` raises :class:`QueueFull` at once and the app answers 503 (with
``Retry-After``) instead of letting requests pile up. Each job is already one batch (nine
endings are one decoder batch of nine), so jobs are queued, not merged.

Streaming jobs hold a worker while they draw and hand each stroke to the event loop as it is
made. Every job runs inside :func:`sketchrnn.models.decoding.stop_when` on its ``cancel``
event: when its client goes away (the app cancels the waiting request, or the stream), the
drawing stops at its next decoding step, whatever :mod:`sketchrnn.generate` function it is;
a job whose client left while it waited is skipped.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sketchrnn.models.decoding import DrawingCancelled, stop_when

__all__ = ["InferenceQueue", "QueueFull", "Stream"]

_DONE = object()


class QueueFull(Exception):
    """Every worker is busy and ``max_pending`` jobs are waiting."""


@dataclass
class _Job:
    run: Callable[[threading.Event], Any]
    loop: asyncio.AbstractEventLoop
    on_result: Callable[[Any], object]
    on_error: Callable[[BaseException], object]
    cancel: threading.Event = field(default_factory=threading.Event)
    queued_at: float = field(default_factory=time.perf_counter)


class Stream:
    """The items a streaming job yields, read with ``async for``; ``cancel()`` stops the
    job (the app calls it when the client disconnects or the response ends)."""

    def __init__(self, job: _Job, items: asyncio.Queue):
        self._job, self._items = job, items

    def cancel(self) -> None:
        self._job.cancel.set()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Any:
        kind, value = await self._items.get()
        if kind == "item":
            return value
        if kind == "error":
            raise value
        raise StopAsyncIteration


class InferenceQueue:
    """``workers`` threads running model calls, at most ``max_pending`` more waiting."""

    def __init__(self, workers: int = 2, max_pending: int = 32, *, name: str = "sketchrnn"):
        if workers < 1 or max_pending < 0:
            raise ValueError("workers must be >= 1 and max_pending >= 0")
        self.workers = workers
        self.max_pending = max_pending
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_pending + workers)
        self._lock = threading.Lock()
        self._running = 0
        self._waiting = 0
        self._served = 0
        self._rejected = 0
        self._cancelled = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-infer-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    # ------------------------------------------------------------------------- submitting

    def _put(self, job: _Job) -> None:
        with self._lock:
            # max_pending counts jobs waiting for a worker; a free worker takes one at once.
            free = self.workers - self._running
            if self._waiting >= self.max_pending + max(free, 0):
                self._rejected += 1
                raise QueueFull(
                    f"the server is busy: {self._running} requests drawing and "
                    f"{self._waiting} waiting; try again in a moment"
                )
            self._waiting += 1
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self._waiting -= 1
                self._rejected += 1
            raise QueueFull("the server is busy; try again in a moment") from None

    async def submit(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` on a worker and return its result (or raise its exception).
        :class:`QueueFull` at once when the queue is full."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def deliver(setter: Callable[[Any], None], value: Any) -> None:
            if not future.done():
                setter(value)

        job = _Job(
            run=lambda _cancel: fn(),
            loop=loop,
            on_result=lambda v: loop.call_soon_threadsafe(deliver, future.set_result, v),
            on_error=lambda e: loop.call_soon_threadsafe(deliver, future.set_exception, e),
        )
        self._put(job)
        try:
            return await future
        except asyncio.CancelledError:
            job.cancel.set()  # the client left: skip the job if it has not started
            raise

    def stream(self, make: Callable[[threading.Event], Iterator[Any]]) -> Stream:
        """Queue a streaming job: ``make(cancel)`` is called on a worker and returns an
        iterator whose items the returned :class:`Stream` yields on the event loop.
        :class:`QueueFull` at once when the queue is full."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()

        def push(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(items.put_nowait, (kind, value))

        def run(cancel: threading.Event) -> None:
            for item in make(cancel):
                if cancel.is_set():
                    break
                push("item", item)

        job = _Job(
            run=run,
            loop=loop,
            on_result=lambda _v: push("done", None),
            on_error=lambda e: push("error", e),
        )
        self._put(job)
        return Stream(job, items)

    # ------------------------------------------------------------------------- workers

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
                self._running += 1
            try:
                if job.cancel.is_set():
                    with self._lock:
                        self._cancelled += 1
                    job.on_result(None)  # nobody is waiting for it any more
                    continue
                try:
                    with stop_when(job.cancel.is_set):
                        result = job.run(job.cancel)
                except BaseException as error:  # delivered to the request, not raised here
                    if isinstance(error, DrawingCancelled):
                        with self._lock:
                            self._cancelled += 1
                    try:
                        job.on_error(error)
                    except RuntimeError:  # the event loop has closed
                        pass
                else:
                    try:
                        job.on_result(result)
                    except RuntimeError:
                        pass
            finally:
                with self._lock:
                    self._running -= 1
                    self._served += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "workers": self.workers,
                "running": self._running,
                "waiting": self._waiting,
                "max_pending": self.max_pending,
                "served": self._served,
                "rejected": self._rejected,
                "cancelled": self._cancelled,
            }

    def close(self) -> None:
        """Stop the workers once the jobs already queued are done."""
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=5)
