"""Who holds which message, kept fresh while they hold it, and given back when they die.

kombu's Redis transport records every message a consumer has taken but not yet acknowledged
in the ``unacked`` hash (delivery tag -> ``[message, exchange, routing_key]``) and in the
``unacked_index`` sorted set (delivery tag -> time taken). Left alone, such a message comes
back only after the visibility timeout, measured from when it was *taken*: a short timeout
re-runs every long task, a long one leaves a killed worker's reservations (the whole
prefetch of a thread pool) unfinished for that long.

Workers use ``ClaimingTransport`` instead of the plain Redis transport. It is kombu's, with
one change to its QoS: when a message is recorded as unacknowledged, the same MULTI also
writes ``CLAIMS_KEY[tag] = <worker id>``, and every ack, reject or restore deletes that claim
with the unacked entry. So there is no moment at which a message is unacked but unclaimed.

``Presence`` (a thread in every worker, from before it consumes until it exits) beats the
worker's own entry in ``WORKERS_KEY`` and moves the ``unacked_index`` score of every message
it holds to now: a message is never older than one beat while its holder lives, so kombu's
visibility timeout never redelivers a live worker's task, however long it runs.

``ClaimRecovery`` (in every worker, one at a time under a lock) finds workers whose beat is
older than the heartbeat TTL and puts every message they claimed back on its queue at once,
at the head of its priority list, through kombu's own restore (which removes it from
``unacked`` in the same transaction, so it is never restored twice). The visibility timeout
stays as the last resort for messages nobody claimed.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import redis
from celery import Celery
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps, loads
from loguru import logger

from jobcontract.keys import CLAIM_RECOVERY_LOCK_KEY, CLAIMS_KEY, WORKERS_KEY
from workers.canvas import GROUP_SEPARATOR, job_ids_of_task
from workers.periodic import Periodic

UNACKED_KEY = kombu_redis.Channel.unacked_key  # "unacked"; celeryconfig does not rename them
UNACKED_INDEX_KEY = kombu_redis.Channel.unacked_index_key  # "unacked_index"


class _Held:
    """The delivery tags this process holds (taken, not yet acked, rejected or restored)."""

    def __init__(self) -> None:
        self.holder: str | None = None  # the worker id; None: claim nothing (a sender-only process)
        self._tags: set[str] = set()
        self._lock = threading.Lock()

    def add(self, tag: str) -> None:
        with self._lock:
            self._tags.add(tag)

    def discard(self, tag: str) -> None:
        with self._lock:
            self._tags.discard(tag)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self._tags)


HELD = _Held()


class ClaimingQoS(kombu_redis.QoS):
    def append(self, message, delivery_tag):
        holder = HELD.holder
        if holder is None:
            return super().append(message, delivery_tag)
        delivery = message.delivery_info
        # kombu's append, with the claim in the same MULTI/EXEC
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()}) \
                .hset(self.unacked_key, delivery_tag, dumps([message._raw, delivery["exchange"],
                                                             delivery["routing_key"]])) \
                .hset(CLAIMS_KEY, delivery_tag, holder) \
                .execute()
            HELD.add(delivery_tag)
            virtual.QoS.append(self, message, delivery_tag)

    def _remove_from_indices(self, delivery_tag, pipe=None):
        HELD.discard(delivery_tag)
        return super()._remove_from_indices(delivery_tag, pipe).hdel(CLAIMS_KEY, delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if not requeue:
            return super().reject(delivery_tag, requeue=False)
        # a message handed back (the worker is stopping) goes to the head of its list, served
        # next, as it would have been; kombu puts it at the tail, behind everything queued since
        self.restore_by_tag(delivery_tag, leftmost=False)
        virtual.QoS.ack(self, delivery_tag)


class ClaimingChannel(kombu_redis.Channel):
    QoS = ClaimingQoS
    _shared_client = None

    @contextlib.contextmanager
    def conn_or_acquire(self, client=None):
        """kombu builds a new Redis client on the channel's pool for every append, ack and
        reject (two per task; a client's construction copies its response-callback table):
        one client per pool serves them all here, rebuilt when kombu replaces the pool."""
        if client:
            yield client
            return
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            shared = self._shared_client = self._create_client()
        yield shared


class ClaimingTransport(kombu_redis.Transport):
    Channel = ClaimingChannel


TRANSPORT = f"{__name__}:ClaimingTransport"


class Presence:
    """This worker's own beat in ``WORKERS_KEY`` and the freshness of its claims."""

    def __init__(self, client: redis.Redis, worker_id: str, interval_s: float):
        self._client = client
        self.worker_id = worker_id
        self._loop = Periodic("presence", interval_s, self.beat)
        self._declared_dead = False

    def start(self) -> None:
        HELD.holder = self.worker_id
        self.beat()
        self._loop.start()

    def beat(self) -> None:
        now = time.time()
        tags = HELD.snapshot()
        with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(WORKERS_KEY, {self.worker_id: now})  # 1 only if it was absent
            for tag in tags:
                pipe.zadd(UNACKED_INDEX_KEY, {tag: now}, xx=True)  # only what is still unacked
            added = pipe.execute()[0]
        if added and self._declared_dead:
            # absent from the registry: a peer took this worker for dead (its beats stalled for a
            # heartbeat TTL) and put back what it held, or Redis came back empty
            logger.error("worker {} was missing from the worker registry (taken for dead after a stall, or Redis "
                         "restarted empty); messages it held may have been given to other workers", self.worker_id)
        self._declared_dead = True  # from the second beat on, an insert means we had been removed

    def leave(self) -> None:
        """At exit: gone from the registry, or, if anything is still claimed (a shutdown that
        ran out of grace), marked dead now so that a peer gives it back at once."""
        self._loop.stop()
        try:
            if HELD.snapshot():
                self._client.zadd(WORKERS_KEY, {self.worker_id: 0})
            else:
                self._client.zrem(WORKERS_KEY, self.worker_id)
        except redis.RedisError:
            pass  # a peer sees the beat go stale instead

    def mark_dead(self) -> None:
        self._loop.stop()
        with contextlib.suppress(redis.RedisError):
            self._client.zadd(WORKERS_KEY, {self.worker_id: 0})


def _message_job(raw: str | None) -> str | None:
    try:
        headers = loads(raw)[0]["headers"]
        return GROUP_SEPARATOR.join(job_ids_of_task(headers["id"]))
    except (TypeError, ValueError, KeyError, IndexError):
        return None


class ClaimRecovery:
    """Put the messages of dead workers back on their queues (one worker at a time)."""

    def __init__(self, client: redis.Redis, celery: Celery, worker_id: str, ttl_s: float, interval_s: float):
        self._client = client  # decode_responses=True
        self._celery = celery
        self._worker_id = worker_id
        self._ttl_s = ttl_s
        self._interval_s = interval_s
        self._loop = Periodic("claim recovery", interval_s, self.sweep)
        self._connection = None

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.release()
            self._connection = None

    @contextlib.contextmanager
    def _qos(self) -> Iterator[ClaimingQoS]:
        """kombu's QoS on a channel of our own: its restore knows the bindings, the priority
        lists and the message format, and removes the unacked entry in the same transaction."""
        if self._connection is None:
            self._connection = self._celery.connection_for_write(transport=ClaimingTransport)
        try:
            yield self._connection.default_channel.qos
        except Exception:
            with contextlib.suppress(Exception):
                self._connection.release()
            self._connection = None
            raise

    def sweep(self) -> dict[str, list[str]]:
        """One pass; returns {dead worker: job ids of the messages put back}."""
        lock_ms = max(1000, int(self._interval_s * 5000))
        if not self._client.set(CLAIM_RECOVERY_LOCK_KEY, self._worker_id, nx=True, px=lock_ms):
            return {}
        try:
            return self._recover()
        finally:
            # released only if still ours (a slow pass may have outlived its lock)
            self._client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                              "return 0", 1, CLAIM_RECOVERY_LOCK_KEY, self._worker_id)

    def _recover(self) -> dict[str, list[str]]:
        now = time.time()
        beats = dict(self._client.zrange(WORKERS_KEY, 0, -1, withscores=True))
        dead = {worker for worker, beat in beats.items() if beat < now - self._ttl_s}
        claims = self._client.hgetall(CLAIMS_KEY)
        if not claims:
            if dead:
                self._client.zrem(WORKERS_KEY, *dead)
            return {}
        unknown = [tag for tag, worker in claims.items() if worker not in beats]
        if unknown:  # a holder that never beat or was already forgotten: dead once its claim is stale
            scores = self._client.zmscore(UNACKED_INDEX_KEY, unknown)
            stale = {tag for tag, score in zip(unknown, scores) if score is None or score < now - self._ttl_s}
        else:
            stale = set()
        lost = {tag: worker for tag, worker in claims.items() if worker in dead or tag in stale}
        recovered: dict[str, list[str]] = {}
        if lost:
            entries = dict(zip(lost, self._client.hmget(UNACKED_KEY, list(lost))))
            with self._qos() as qos:
                for tag, worker in lost.items():
                    qos.restore_by_tag(tag)  # back on its queue (if still unacked), claim removed
                    job = _message_job(entries.get(tag))
                    recovered.setdefault(worker, []).append(job or tag)
            self._client.hdel(CLAIMS_KEY, *lost)  # whatever the restore found, the claim is void
        for worker, jobs in recovered.items():
            age = now - beats[worker] if worker in beats else None
            logger.warning("worker {} is gone ({}); put its {} message(s) back on their queues: {}", worker,
                           f"no beat for {age:.1f}s" if age is not None else "never registered", len(jobs),
                           ", ".join(jobs))
        if dead:
            self._client.zrem(WORKERS_KEY, *dead)
        return recovered
