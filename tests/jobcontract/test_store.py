"""Job state transitions against a real Redis."""

import time

import pytest
import redis

from jobcontract.keys import EVENTS_CHANNEL, input_key, job_key
from jobcontract.payload import JobInput
from jobcontract.plan import JobPlan, PlanFormatError
from jobcontract.record import QUEUED, JobError, JobRecord
from jobcontract.store import JobStore


@pytest.fixture
def store(private_redis):
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    yield JobStore(private_redis.url, ttl_s=120), client
    client.close()


def _create(client, job_id: str):
    record = JobRecord(id=job_id, status=QUEUED, created_at=time.time(), plan=JobPlan.build("m", "vad", [("m", "vad")]))
    client.hset(job_key(job_id), mapping=record.initial_hash())
    client.expire(job_key(job_id), 60)


def test_start_finish_and_publish(store):
    jobs, client = store
    _create(client, "j1")
    pubsub = client.pubsub()
    pubsub.subscribe(EVENTS_CHANNEL)
    pubsub.get_message(timeout=1)
    status, created_at = jobs.start("j1", 0, {"name": "m"})
    assert status == "running" and time.time() - 5 < created_at <= time.time()
    assert jobs.succeed("j1", 0, {"name": "m", "status": "succeeded"}, {"x": 1}) == "succeeded"
    message = pubsub.get_message(timeout=2)
    assert message and message["data"] == "j1"
    record = jobs.get("j1")
    assert record.status == "succeeded" and record.result == {"x": 1} and record.attempts == 1
    assert record.steps == [{"name": "m", "status": "succeeded"}]
    assert 60 < client.ttl(job_key("j1")) <= 120  # result kept for the TTL after it finished
    pubsub.close()


def test_a_redelivered_job_that_already_finished_is_skipped(store):
    jobs, client = store
    _create(client, "j2")
    jobs.start("j2", 0, {})
    jobs.fail("j2", 0, {}, JobError("bad", status=400))
    assert jobs.start("j2", 0, {}) == ("failed", None)
    assert jobs.succeed("j2", 0, {}, {"late": True}) == "failed"  # the first ending stands
    assert jobs.get("j2").error.message == "bad"


def test_a_job_running_on_a_dead_worker_can_be_started_again(store):
    jobs, client = store
    _create(client, "j3")
    assert jobs.start("j3", 0, {})[0] == "running"
    assert jobs.start("j3", 0, {})[0] == "running"
    assert jobs.get("j3").attempts == 2


def test_cancelled_and_missing_jobs_are_not_started(store):
    jobs, client = store
    _create(client, "j4")
    client.hset(job_key("j4"), "status", "cancelled")
    assert jobs.start("j4", 0, {}) == ("cancelled", None)
    assert jobs.start("never-created", 0, {}) == ("missing", None)


def test_the_plan_and_input_read_back_as_stored(store):
    jobs, client = store
    _create(client, "j5")
    assert jobs.plan("j5") == JobPlan.build("m", "vad", [("m", "vad")])
    assert jobs.plan("never-created") is None
    client.set("speechfleet:job-input:j5", JobInput({"audio": b"\x00\x01", "threshold": 0.5}).encode())
    assert jobs.input("j5") == JobInput({"audio": b"\x00\x01", "threshold": 0.5})


def test_a_start_reads_the_input_and_the_plan_read_knows_the_callback(store):
    """What a step reads in one round trip each: the plan with the callback flag, the start
    with the stored input."""
    jobs, client = store
    _create(client, "j9")
    assert jobs.plan_and_callback("j9") == (JobPlan.build("m", "vad", [("m", "vad")]), False)
    client.hset(job_key("j9"), "callback_url", "https://example.com/hook")
    assert jobs.plan_and_callback("j9")[1] is True and jobs.plan_and_callback("never-created") == (None, False)
    stored = JobInput({"audio": b"\x00\x01"}).encode()
    client.set("speechfleet:job-input:j9", stored)
    status, created_at, raw = jobs.start_reading_input("j9", 0, {"name": "m"})
    assert status == "running" and abs(created_at - time.time()) < 60 and raw == stored
    assert jobs.get("j9").status == "running" and jobs.get("j9").steps == [{"name": "m"}]
    client.hset(job_key("j9"), "status", "cancelled")
    assert jobs.start_reading_input("j9", 0, {})[:2] == ("cancelled", None)
    assert jobs.start_reading_input("never-created", 0, {}) == ("missing", None, None)


def test_a_step_output_is_kept_for_later_steps_and_wakes_listeners(store):
    jobs, client = store
    _create(client, "j6")
    jobs.start("j6", 0, {})
    pubsub = client.pubsub()
    pubsub.subscribe(EVENTS_CHANNEL)
    pubsub.get_message(timeout=1)
    assert not jobs.has_step_output("j6", 0)
    assert jobs.finish_step("j6", 0, {"name": "m[0]", "status": "succeeded"}, b"packed") == "running"
    assert jobs.has_step_output("j6", 0) and jobs.step_output("j6", 0) == b"packed"
    assert pubsub.get_message(timeout=2)["data"] == "j6"
    assert jobs.get("j6").steps == [{"name": "m[0]", "status": "succeeded"}]
    pubsub.close()


def test_start_reloads_its_script_after_redis_loses_it(store):
    """START goes as EVALSHA (no SCRIPT EXISTS round trip): a Redis that lost its scripts
    (restarted, SCRIPT FLUSH) gets it loaded again, and the step starts."""
    jobs, client = store
    _create(client, "flushed")
    client.set(input_key("flushed"), JobInput({"audio": b"x"}).encode())
    client.script_flush()
    status, created_at, raw_input = jobs.start_reading_input("flushed", 0, {"name": "m"})
    assert status == "running" and created_at is not None and JobInput.decode(raw_input).request["audio"] == b"x"
    assert jobs.get("flushed").status == "running"


def test_several_jobs_read_and_start_in_one_round_trip_each(store):
    """What a message of several jobs reads: every plan (a plan of another version comes back
    as its error, a missing job as None), then every start with its input, the script loaded
    again if Redis lost it."""
    jobs, client = store
    for job_id in ("many1", "many2"):
        _create(client, job_id)
        client.set(input_key(job_id), JobInput({"audio": job_id.encode()}).encode())
    client.hset(job_key("many-old"), "plan", '{"version": 999}')
    client.hset(job_key("many2"), "callback_url", "https://example.com/hook")
    plan = JobPlan.build("m", "vad", [("m", "vad")])
    first, second, missing, old = jobs.plans_and_callbacks(["many1", "many2", "never-created", "many-old"])
    assert first == (plan, False) and second == (plan, True) and missing == (None, False)
    assert isinstance(old, PlanFormatError)
    client.script_flush()
    starts = jobs.start_reading_inputs([("many1", 0, {"name": "m"}), ("never-created", 0, {}), ("many2", 0, {})])
    assert [status for status, _, _ in starts] == ["running", "missing", "running"]
    assert [JobInput.decode(raw).request["audio"] for _, _, raw in (starts[0], starts[2])] == [b"many1", b"many2"]
    assert jobs.get("many1").steps == [{"name": "m"}] and jobs.get("many2").status == "running"
