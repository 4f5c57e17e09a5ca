"""The workers' fleet metrics against a real Redis: written from a thread of their own
(deferred) they add up to exactly what writing each at once does."""

import redis

from jobcontract.metrics import counter_key, histogram_key
from workers.metrics import WorkerMetrics


def _record(metrics: WorkerMetrics, model: str) -> None:
    for size in (1, 3, 3, 9):
        metrics.batch(model, size)
    metrics.job(model, "succeeded", 0.02, 0.3, 0.05)
    metrics.job(model, None, 0.2, 0.1, float("nan"))  # a part: timed, not counted; nan left out
    metrics.job(model, "failed:model_error")
    metrics.observations(model, {"stt_window_fill": [0.5, 0.95], "not_a_histogram": [1.0]})


def _read(client: redis.Redis, model: str) -> dict:
    names = ("batch_size", "queue_wait_seconds", "inference_seconds", "real_time_factor", "stt_window_fill")
    hashes = {name: client.hgetall(histogram_key(name, model)) for name in names}
    sums = {name: round(float(values.pop("sum")), 9) for name, values in hashes.items()}
    jobs = {label: value for label, value in client.hgetall(counter_key("jobs")).items() if label.startswith(model)}
    return {"hashes": hashes, "sums": sums, "jobs": jobs}


def test_deferred_metrics_add_up_to_the_immediate_ones(private_redis):
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    _record(WorkerMetrics(client), "at-once")
    deferred = WorkerMetrics(client, deferred=True)
    _record(deferred, "deferred")
    deferred.flush()
    immediate, later = _read(client, "at-once"), _read(client, "deferred")
    assert immediate["hashes"]["batch_size"]["count"] == "4" and immediate["hashes"]["batch_size"]["le:4"] == "3"
    assert immediate["hashes"]["real_time_factor"]["count"] == "1"
    assert later["hashes"] == immediate["hashes"] and later["sums"] == immediate["sums"]
    assert {label.split("|")[1]: value for label, value in later["jobs"].items()} == \
        {label.split("|")[1]: value for label, value in immediate["jobs"].items()} == {"succeeded": "1",
                                                                                        "failed:model_error": "1"}


def test_deferred_metrics_are_written_without_a_flush(private_redis):
    """The sender thread writes as observations arrive; flush only waits for it."""
    import time

    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    WorkerMetrics(client, deferred=True).batch("unflushed", 2)
    deadline = time.monotonic() + 10
    while client.hget(histogram_key("batch_size", "unflushed"), "count") != "1":
        assert time.monotonic() < deadline, "the deferred observation never reached Redis"
        time.sleep(0.01)
