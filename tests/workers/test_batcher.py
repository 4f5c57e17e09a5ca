import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from workers.batcher import BatcherClosed, MicroBatcher


class Recorder:
    """A batch function that records the batches it was called with."""

    def __init__(self, delay_s: float = 0.0, poison=None):
        self.batches: list[list] = []
        self.delay_s = delay_s
        self.poison = poison
        self.lock = threading.Lock()

    def __call__(self, items):
        with self.lock:
            self.batches.append(list(items))
        if self.poison is not None and self.poison in items:
            raise ValueError("poisoned batch")
        time.sleep(self.delay_s)
        return [item * 10 for item in items]


def test_concurrent_submissions_share_batches_and_each_gets_its_own_output():
    recorder = Recorder(delay_s=0.02)
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_ms=20, name="t")
    try:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(lambda i: batcher.submit(i).result(timeout=10), range(64)))
    finally:
        batcher.close()
    assert [output for output, _ in results] == [i * 10 for i in range(64)]
    assert max(len(batch) for batch in recorder.batches) == 8
    assert len(recorder.batches) < 64 / 2  # batched, not one call per item
    assert all(1 <= stats.batch_size <= 8 for _, stats in results)


def test_a_lone_item_waits_at_most_max_wait():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_batch_size=16, max_wait_ms=50, name="t")
    try:
        started = time.perf_counter()
        output, stats = batcher.submit(3).result(timeout=5)
        elapsed = time.perf_counter() - started
    finally:
        batcher.close()
    assert output == 30 and stats.batch_size == 1
    assert 0.04 <= elapsed < 1.0


def test_a_poisonous_item_fails_alone():
    recorder = Recorder(poison=5)
    batcher = MicroBatcher(recorder, max_batch_size=8, max_wait_ms=100, name="t")
    try:
        futures = [batcher.submit(i) for i in range(8)]
        for i, future in enumerate(futures):
            if i == 5:
                with pytest.raises(ValueError, match="poisoned"):
                    future.result(timeout=5)
            else:
                assert future.result(timeout=5)[0] == i * 10
    finally:
        batcher.close()


def test_per_item_exceptions_from_the_model_are_delivered_to_their_item():
    def infer(items):
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    batcher = MicroBatcher(infer, max_batch_size=4, max_wait_ms=50, name="t")
    try:
        futures = [batcher.submit(i) for i in range(4)]
        assert futures[0].result(timeout=5)[0] == 0
        with pytest.raises(ValueError, match="bad 1"):
            futures[1].result(timeout=5)
    finally:
        batcher.close()


def test_wrong_output_count_is_an_error_not_a_hang():
    batcher = MicroBatcher(lambda items: [len(items)], max_batch_size=4, max_wait_ms=200, name="t")
    try:
        futures = [batcher.submit(i) for i in range(3)]
        # the batch of 3 got 1 output: an error, so each item was retried alone and got its own
        assert [future.result(timeout=5)[0] for future in futures] == [1, 1, 1]
    finally:
        batcher.close()


def test_a_failure_outside_the_model_call_still_resolves_every_future():
    def broken_hook(stats):
        raise RuntimeError("metrics hook broke")

    batcher = MicroBatcher(Recorder(), max_batch_size=4, max_wait_ms=50, name="t", on_batch=broken_hook)
    try:
        futures = [batcher.submit(i) for i in range(3)]
        # the outputs were handed out before the hook ran; the batcher thread survived it
        assert [future.result(timeout=5)[0] for future in futures] == [0, 10, 20]
        assert batcher.submit(7).result(timeout=5)[0] == 70
    finally:
        batcher.close()


def test_closed_batcher_refuses_work():
    batcher = MicroBatcher(Recorder(), max_batch_size=2, max_wait_ms=1, name="t")
    batcher.close()
    with pytest.raises(BatcherClosed):
        batcher.submit(1)


def test_instances_run_batches_side_by_side_from_one_queue():
    # each instance's call waits until the other one is inside a call too: only two batching
    # threads on the one queue, running at once, can get past it (no timing involved)
    inside = {"first": threading.Event(), "second": threading.Event()}

    def instance(me: str, other: str):
        def infer(items):
            inside[me].set()
            assert inside[other].wait(10), f"{other} never ran beside {me}"
            return [(me, item) for item in items]
        return infer

    batcher = MicroBatcher([instance("first", "second"), instance("second", "first")], max_batch_size=1,
                           max_wait_ms=0, name="two")
    try:
        assert batcher.instances == 2
        futures = [batcher.submit(i) for i in range(6)]
        outputs = [future.result(timeout=30)[0] for future in futures]
    finally:
        batcher.close()
    assert [item for _, item in outputs] == list(range(6))  # each item its own output
    assert {who for who, _ in outputs} == {"first", "second"}


def test_every_instance_thread_ends_on_close_and_on_hand_back():
    for stop in ("close", "hand_back"):
        batcher = MicroBatcher([Recorder(), Recorder(), Recorder()], max_batch_size=4, max_wait_ms=1, name=stop)
        assert batcher.submit(1).result(timeout=10)[0] == 10
        getattr(batcher, stop)()
        for thread in batcher._threads:
            thread.join(10)
            assert not thread.is_alive()
        with pytest.raises(BatcherClosed):
            batcher.submit(2)


def test_a_batcher_needs_an_instance():
    with pytest.raises(ValueError, match="at least one"):
        MicroBatcher([], max_batch_size=1, max_wait_ms=1)
