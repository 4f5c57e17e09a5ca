"""Dynamic micro-batching inside a worker (in the style of Triton's dynamic batcher and Ray
Serve's ``@serve.batch``).

Celery runs each inference task on its own pool thread; the task hands its prepared input
to the model's batcher and blocks on a future. One batcher thread per model collects up to
``max_batch_size`` inputs, waiting at most ``max_wait_ms`` after the first one arrives,
makes ONE batched model call and resolves every future with its own output or error. Each
inference stays a plain Celery task, so acks, retries, revokes, chains and chords work.

Several instances of a model (Triton's ``instance_group { count }``) are several batching
threads on the one input queue, each calling its own copy of the model. One thread collects
at a time, so a batch fills as it would with one instance; the next free instance collects
the next batch while the first one computes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from loguru import logger


@dataclass(frozen=True)
class BatchStats:
    batch_size: int
    batch_wait_ms: float  # from submission to the start of the batched call
    inference_ms: float  # the batched call itself


@dataclass
class _Pending:
    item: Any
    future: Future
    submitted: float


class BatcherClosed(RuntimeError):
    pass


InferBatch = Callable[[Sequence[Any]], list[Any]]


class MicroBatcher:
    def __init__(self, infer_batch: InferBatch | Sequence[InferBatch], *, max_batch_size: int,
                 max_wait_ms: float, name: str = "batcher", on_batch: Callable[[BatchStats], None] | None = None):
        """``infer_batch``: one model's batched call, or one per instance of the model."""
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        instances = [infer_batch] if callable(infer_batch) else list(infer_batch)
        if not instances:
            raise ValueError("a batcher needs at least one model instance")
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.name = name
        self._on_batch = on_batch
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._closed = threading.Event()
        self._collecting = threading.Lock()  # one instance fills a batch at a time
        self._threads = [threading.Thread(target=self._run, args=(infer,), daemon=True,
                                          name=f"batcher-{name}" + (f"-{index}" if len(instances) > 1 else ""))
                         for index, infer in enumerate(instances)]
        for thread in self._threads:
            thread.start()

    @property
    def instances(self) -> int:
        return len(self._threads)

    def submit(self, item: Any) -> Future:
        """Queue one prepared input; the future resolves to ``(output, BatchStats)``."""
        if self._closed.is_set():
            raise BatcherClosed(f"{self.name} is shut down")
        future: Future = Future()
        self._queue.put(_Pending(item, future, time.perf_counter()))
        return future

    def hand_back(self) -> int:
        """Stop taking items (a worker's graceful shutdown): the batch being run finishes,
        and every item still waiting fails at once with ``BatcherClosed``, so its task puts
        its message back on the queue for another worker. Returns how many were waiting."""
        self._closed.set()
        waiting = self._drain()
        for pending in waiting:
            pending.future.set_exception(BatcherClosed(f"{self.name} is stopping; handed back before it ran"))
        self._queue.put(None)  # wakes the batching thread, which then ends
        return len(waiting)

    def close(self, timeout: float = 5.0) -> None:
        self._closed.set()
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _collect(self) -> list[_Pending] | None:
        """The next batch, or None once the shutdown signal comes first (which stays queued
        for the other instances' threads)."""
        first = self._queue.get()
        if first is None:
            self._queue.put(None)
            return None
        batch = [first]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            try:
                # whatever is already waiting joins at once; then wait for more until the deadline
                pending = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    pending = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if pending is None:
                self._queue.put(None)  # keep the shutdown signal for the outer loop
                break
            batch.append(pending)
        return batch

    def _run(self, infer_batch: InferBatch) -> None:
        while True:
            with self._collecting:
                batch = self._collect()
            if batch is None:
                break
            try:
                self._serve(infer_batch, batch)
            except BaseException as exc:  # never leave a caller waiting on a future nobody will set
                logger.exception("{}: batch failed outside the model call", self.name)
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
        for pending in self._drain():  # submitted in the moment of closing
            pending.future.set_exception(BatcherClosed(f"{self.name} shut down before this item ran"))
        self._queue.put(None)  # the drain took the signal; the next instance's thread needs it

    def _serve(self, infer_batch: InferBatch, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        outputs = self._call(infer_batch, [pending.item for pending in batch])
        inference_ms = (time.perf_counter() - started) * 1000
        for pending, output in zip(batch, outputs):
            stats = BatchStats(len(batch), (started - pending.submitted) * 1000, inference_ms)
            if isinstance(output, BaseException):
                pending.future.set_exception(output)
            else:
                pending.future.set_result((output, stats))
        if self._on_batch is not None:
            self._on_batch(BatchStats(len(batch), (started - batch[0].submitted) * 1000, inference_ms))

    def _call(self, infer_batch: InferBatch, items: list[Any]) -> list[Any]:
        """One batched call; if it fails as a whole, retry items one by one so that a single
        poisonous input fails alone instead of taking its neighbours down."""
        try:
            outputs = infer_batch(items)
            if len(outputs) != len(items):
                raise RuntimeError(f"model returned {len(outputs)} outputs for {len(items)} inputs")
            return list(outputs)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            logger.warning("{}: batch of {} failed ({}); isolating items", self.name, len(items), exc)
            return [self._call(infer_batch, [item])[0] for item in items]

    def _drain(self) -> list[_Pending]:
        drained = []
        while True:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                return drained
            if pending is not None:
                drained.append(pending)
