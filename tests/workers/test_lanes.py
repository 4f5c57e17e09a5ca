"""Length lanes: items batch with items of their own length, and a short batch runs beside
a long one (real batchers and threads; the batch function sleeps in proportion to length)."""

import threading
import time

import pytest

from workers.batcher import BatcherClosed, MicroBatcher
from workers.lanes import LengthLanes


class LengthRecorder:
    def __init__(self):
        self.batches: list[list[float]] = []
        self.lock = threading.Lock()

    def __call__(self, items):
        with self.lock:
            self.batches.append(list(items))
        time.sleep(max(items) / 200)  # "padded to the longest": 10 s of input costs 0.05 s
        return [f"done {item}" for item in items]


@pytest.fixture
def lanes():
    recorder = LengthRecorder()
    made = LengthLanes(lambda name: MicroBatcher(recorder, max_batch_size=8, max_wait_ms=20, name=name),
                       measure=lambda seconds: seconds, bounds=[30.0])
    yield made, recorder
    made.close()


def test_items_are_batched_only_with_items_of_their_lengths(lanes):
    made, recorder = lanes
    futures = [made.submit(seconds) for seconds in (600.0, 1.5, 590.0, 2.0, 3.0, 610.0)]
    assert [future.result(timeout=30)[0] for future in futures] == [
        "done 600.0", "done 1.5", "done 590.0", "done 2.0", "done 3.0", "done 610.0"]
    for batch in recorder.batches:
        assert all(seconds <= 30 for seconds in batch) or all(seconds > 30 for seconds in batch), batch
    assert made.lane_of(None) == 0 and made.lane_of(12.0) == 0 and made.lane_of(31.0) == 1  # unknown: short


def test_a_short_item_does_not_wait_for_a_long_batch(lanes):
    made, _ = lanes
    long = made.submit(600.0)  # 3 s of "compute"
    time.sleep(0.1)
    started = time.monotonic()
    (output, stats) = made.submit(1.0).result(timeout=30)
    short_s = time.monotonic() - started
    assert output == "done 1.0" and stats.batch_size == 1
    assert not long.done()  # it answered while the long batch was still running
    long.result(timeout=30)
    print(f"short item answered in {short_s:.3f}s beside a 3 s batch")


def test_handing_back_fails_what_waits_in_every_lane(lanes):
    made, _ = lanes
    made.submit(600.0)
    time.sleep(0.05)
    waiting = [made.submit(seconds) for seconds in (700.0, 800.0)]
    assert made.hand_back() >= 1
    for future in waiting:
        with pytest.raises(BatcherClosed):
            future.result(timeout=30)
