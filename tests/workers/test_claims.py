"""Claims on kombu's unacked messages (workers.claims) against a real Redis: written with the
unacked entry, refreshed while held, put back on their queue (priority list, head) once their
holder stops beating, and only then."""

import json
import time

import pytest
import redis
from celery import Celery
from kombu import Exchange, Queue

import celeryconfig
from jobcontract.keys import CLAIM_RECOVERY_LOCK_KEY, CLAIMS_KEY, WORKERS_KEY
from jobcontract.priorities import PRIORITIES, queue_keys
from workers.claims import (
    HELD,
    UNACKED_INDEX_KEY,
    UNACKED_KEY,
    ClaimingTransport,
    ClaimRecovery,
    Presence,
)

QUEUE = "model.claim-test"


@pytest.fixture
def app(private_redis):
    celery = Celery("claims-test", broker=private_redis.url)
    celery.conf.broker_transport_options = celeryconfig.broker_transport_options
    yield celery
    celery.close()


@pytest.fixture
def client(private_redis):
    client = redis.Redis.from_url(private_redis.url, decode_responses=True)
    client.flushdb()
    yield client
    HELD.holder = None
    for tag in HELD.snapshot():
        HELD.discard(tag)
    client.flushdb()


def take(app, holder: str, job_ids: list[str], priority: str = "low") -> list[str]:
    """Publish one message per job and take them as ``holder`` would (kombu's basic_get records
    them as unacked, and the claiming QoS claims them); returns their delivery tags."""
    queue = Queue(QUEUE, Exchange(QUEUE, "direct"), routing_key=QUEUE, max_priority=9)
    tags = []
    with app.connection_for_write(transport=ClaimingTransport) as connection:
        channel = connection.channel()
        producer = connection.Producer(channel)
        for job_id in job_ids:
            producer.publish({"job": job_id}, exchange=queue.exchange, routing_key=QUEUE, declare=[queue],
                             priority=PRIORITIES[priority], headers={"id": job_id})
        HELD.holder = holder
        for _ in job_ids:
            message = queue(channel).get(no_ack=False)
            tags.append(message.delivery_tag)
        channel.qos._delivered.clear()  # the channel closes without restoring: the "process" died
        HELD.holder = None
    return tags


def queued_jobs(client) -> dict[str, list[str]]:
    return {key: [json.loads(raw)["headers"]["id"] for raw in client.lrange(key, 0, -1)]
            for key in queue_keys(QUEUE) if client.llen(key)}


def test_a_taken_message_is_claimed_with_its_unacked_entry(app, client):
    (tag,) = take(app, "w-alive", ["job-1"])
    assert client.hget(CLAIMS_KEY, tag) == "w-alive"
    assert client.hexists(UNACKED_KEY, tag) and client.zscore(UNACKED_INDEX_KEY, tag) is not None


def test_dead_workers_messages_go_back_to_the_head_of_their_priority_list(app, client):
    dead_tags = take(app, "w-dead", ["dead-1", "dead-2"], priority="low")
    live_tags = take(app, "w-alive", ["live-1"])
    orphan_tags = take(app, "w-never-registered", ["orphan-1"])
    # something published since waits in the same list; the restored ones must be served first
    with app.connection_for_write() as connection:
        connection.Producer().publish({"job": "later"}, exchange=QUEUE, routing_key=QUEUE,
                                      priority=PRIORITIES["low"], headers={"id": "later"})
    now = time.time()
    client.zadd(WORKERS_KEY, {"w-dead": now - 30, "w-alive": now})
    client.zadd(UNACKED_INDEX_KEY, {orphan_tags[0]: now - 30})  # its claim has not been refreshed since

    recovery = ClaimRecovery(client, app, "w-alive", ttl_s=6, interval_s=1)
    recovered = recovery.sweep()
    recovery.stop()

    assert sorted(recovered["w-dead"]) == ["dead-1", "dead-2"] and recovered["w-never-registered"] == ["orphan-1"]
    low = queue_keys(QUEUE)[PRIORITIES["low"] // 3]
    # consumers pop from the right: the restored messages come before "later"
    queued = queued_jobs(client)
    assert list(queued) == [low] and queued[low][0] == "later"
    assert set(queued[low][1:]) == {"orphan-1", "dead-1", "dead-2"}
    for tag in dead_tags + orphan_tags:  # gone from unacked, so kombu's own restore cannot send them again
        assert not client.hexists(UNACKED_KEY, tag) and client.zscore(UNACKED_INDEX_KEY, tag) is None
        assert not client.hexists(CLAIMS_KEY, tag)
    restored = json.loads(client.lrange(low, -1, -1)[0])
    assert restored["headers"]["redelivered"] is True
    # the live worker's message is untouched, and the dead worker is forgotten
    assert client.hget(CLAIMS_KEY, live_tags[0]) == "w-alive" and client.hexists(UNACKED_KEY, live_tags[0])
    assert client.zscore(WORKERS_KEY, "w-dead") is None and client.zscore(WORKERS_KEY, "w-alive") is not None
    assert ClaimRecovery(client, app, "w-alive", ttl_s=6, interval_s=1).sweep() == {}  # nothing twice


def test_a_live_holder_keeps_its_claims_fresh(app, client):
    (tag,) = take(app, "w-slow", ["long-job"])
    client.zadd(UNACKED_INDEX_KEY, {tag: time.time() - 1000})  # taken long ago (a long task)
    HELD.add(tag)  # held by this process
    presence = Presence(client, "w-slow", interval_s=2)
    presence.beat()
    assert client.zscore(UNACKED_INDEX_KEY, tag) > time.time() - 2  # kombu's timeout starts again from now
    assert client.zscore(WORKERS_KEY, "w-slow") > time.time() - 2
    recovery = ClaimRecovery(client, app, "w-peer", ttl_s=6, interval_s=1)
    assert recovery.sweep() == {}
    recovery.stop()
    presence.leave()  # still holding: marked dead, so that a peer gives it back at once
    assert client.zscore(WORKERS_KEY, "w-slow") == 0


def test_one_recoverer_at_a_time(app, client):
    take(app, "w-dead", ["dead-1"])
    client.zadd(WORKERS_KEY, {"w-dead": time.time() - 30})
    client.set(CLAIM_RECOVERY_LOCK_KEY, "w-other", px=5000)
    assert ClaimRecovery(client, app, "w-me", ttl_s=6, interval_s=1).sweep() == {}
    assert client.hlen(CLAIMS_KEY) == 1
