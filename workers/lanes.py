"""Batching lanes by input length: a 1-second request must not wait for, or be padded to, a
10-minute one.

A batch pads every stream to its longest member and is answered only when that one is done,
so mixing lengths makes short requests as slow as long ones (measured: a 1.6 s VAD request
took 19 s at p50 while 10-minute requests ran). A model whose ``length_lanes`` names bounds
(seconds) gets one micro-batcher per range of lengths, each with its own thread: items batch
only with items of similar length, and a short batch runs beside a long one instead of after
it. Only families whose ``infer_batch`` may run on two threads at once declare lanes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from workers.batcher import MicroBatcher


class LengthLanes:
    """The MicroBatcher interface over one batcher per length range."""

    def __init__(self, make_batcher: Callable[[str], MicroBatcher], measure: Callable[[Any], float | None],
                 bounds: Sequence[float]):
        if list(bounds) != sorted(bounds) or not bounds:
            raise ValueError("lane bounds must be increasing seconds")
        self._bounds = list(bounds)
        self._measure = measure
        names = [f"<={bound:g}s" for bound in bounds] + [f">{bounds[-1]:g}s"]
        self.lanes = [make_batcher(name) for name in names]

    def lane_of(self, item: Any) -> int:
        seconds = self._measure(item)
        return 0 if seconds is None else bisect.bisect_left(self._bounds, seconds)

    def submit(self, item: Any) -> Future:
        return self.lanes[self.lane_of(item)].submit(item)

    def hand_back(self) -> int:
        return sum(lane.hand_back() for lane in self.lanes)

    def close(self, timeout: float = 5.0) -> None:
        for lane in self.lanes:
            lane.close(timeout)


def batcher_for(model, make_batcher: Callable[[str], MicroBatcher]) -> MicroBatcher | LengthLanes:
    """One batcher for the model, or lanes when its family declares them."""
    bounds = getattr(model, "length_lanes", ())
    if not bounds:
        return make_batcher("")
    return LengthLanes(make_batcher, model.input_seconds, bounds)
