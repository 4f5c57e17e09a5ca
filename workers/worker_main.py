"""Start a worker process: load its models, give each a micro-batcher, heartbeat, and
consume each model's queue with a thread pool wide enough to fill the batches."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import redis
from celery.utils.log import mlevel
from loguru import logger

from jobcontract.settings import WorkerSettings
from speechmodels import ModelConfig, load_model
from workers import claims, parallelism, runtime
from workers.batcher import MicroBatcher
from workers.claims import ClaimRecovery, Presence
from workers.lanes import batcher_for
from workers.liveness import Heartbeat, publish_card
from workers.metrics import WorkerMetrics
from workers.recovery import LostJobSweeper


def pool_threads(configs: list[ModelConfig]) -> int:
    """Two batches' worth of task threads per model instance: one batch runs while the next fills."""
    return sum(2 * config.max_batch_size * (config.instances or 1) for config in configs)


def run_worker(configs: list[ModelConfig], settings: WorkerSettings, device: str | None = None,
               loglevel: str = "INFO") -> None:
    # the cores this worker owns, spent per model as instances and threads of each
    cores = settings.worker_cores or parallelism.available_cores()
    configs = [parallelism.with_threads(config, parallelism.plan(config, cores, device or config.device_config.device))
               for config in configs]
    _pin_threads(settings, configs)
    # deferred: a batching thread hands its batch's size over and collects the next batch at once
    fleet_metrics = WorkerMetrics(redis.Redis.from_url(settings.redis_url), deferred=True)
    for config in configs:
        started = time.perf_counter()
        model = load_model(config, device=device)
        model.warm_up()
        model.observer = lambda observations, name=config.name: fleet_metrics.observations(name, observations)
        instances = [model, *_more_instances(model, config, device)]
        # one batcher, or one per length range where the family pads batches to the longest item;
        # each with a batching thread per instance
        batcher = batcher_for(model, lambda lane, config=config, instances=instances: MicroBatcher(
            [instance.infer_batch for instance in instances], max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
            name=f"{config.name}{lane}",
            on_batch=lambda stats, name=config.name: fleet_metrics.batch(name, stats.batch_size)))
        runtime.SERVED[config.name] = runtime.ServedModel(config, model, batcher)
        languages = model.language_voices()
        if languages is not None:
            publish_card(redis.Redis.from_url(settings.redis_url), config.name, languages, model.voices())
        logger.info("loaded {} ({}) on {} in {:.2f}s: {} instance(s) of {} thread(s) on {} core(s); batches of up "
                    "to {}, {} ms wait", config.name, config.model_type, model.device, time.perf_counter() - started,
                    config.instances, config.threads, cores, config.max_batch_size, config.max_wait_ms)

    from workers.celery_app import (
        app,  # imported after the models, so a bad config fails before connecting
    )

    worker_id = f"{'+'.join(c.name for c in configs)}@{socket.gethostname()}.{os.getpid()}"
    heartbeat = Heartbeat(redis.Redis.from_url(settings.redis_url), worker_id, [c.name for c in configs],
                          settings.heartbeat_interval_s, settings.heartbeat_ttl_s)
    worker = app.Worker(
        hostname=worker_id,
        queues=[config.queue for config in configs],
        pool="threads",
        concurrency=pool_threads(configs),
        loglevel=loglevel,
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    batchers = [served.batcher for served in runtime.SERVED.values()]
    _run_with_claims(app, worker, worker_id, settings, heartbeat, batchers, {config.queue for config in configs},
                     fleet_metrics)


def _run_with_claims(app, worker, worker_id: str, settings: WorkerSettings, heartbeat: Heartbeat | None,
                     batchers: list[MicroBatcher], queues: set[str],
                     fleet_metrics: WorkerMetrics | None = None) -> None:
    """Run a Celery worker whose messages are claimed (``workers.claims``): present from before
    it consumes until it exits, recovering dead peers' messages, and stopping gracefully; it
    consumes only ``queues``, whatever remote control asks."""
    app.conf.broker_transport = claims.TRANSPORT  # kombu's Redis transport, claiming what it takes
    presence = Presence(redis.Redis.from_url(settings.redis_url), worker_id, settings.heartbeat_interval_s)
    recovery = ClaimRecovery(redis.Redis.from_url(settings.redis_url, decode_responses=True), app, worker_id,
                             ttl_s=settings.heartbeat_ttl_s, interval_s=settings.claim_recovery_interval_s)
    # a message lost between the queue and ``unacked`` (a kill in kombu's BRPOP window) leaves
    # only its job record: the sweeper resends it once the visibility timeout (and one kombu
    # restore round) has passed without any sign of it
    sweeper = LostJobSweeper(redis.Redis.from_url(settings.redis_url, decode_responses=True), app, worker_id,
                             quiet_after_s=settings.visibility_timeout_s + settings.unacked_restore_interval_s,
                             interval_s=settings.lost_job_sweep_interval_s)
    from celery import signals

    # consumers are announced only once Celery is really consuming, and withdrawn on shutdown
    def on_ready(sender=None, **_):
        if sender is not None:  # the consumer
            _consume_only(sender, queues, worker_id)
        if heartbeat is not None:
            heartbeat.start()
        sweeper.start()
        recovery.start()

    def on_shutdown(**_):
        # stop taking work: the batch in flight finishes, what waits behind it goes back to the
        # queue now (head of its list) for another worker; Celery then stops consuming, waits
        # for the pool and restores anything still unacknowledged when it closes the channel
        handed = sum(batcher.hand_back() for batcher in batchers)
        logger.info("worker {} stopping: handed back {} waiting message(s); up to {:g}s for the batch in flight",
                    worker_id, handed, settings.shutdown_grace_s)
        if heartbeat is not None:
            heartbeat.stop()
        sweeper.stop()
        recovery.stop()
        timer = threading.Timer(settings.shutdown_grace_s, out_of_grace)
        timer.daemon = True
        timer.start()

    def out_of_grace():
        # still here: the batch overran the grace. Marked dead, a peer puts back what is
        # still claimed within a second; the batch dies with the process (it runs again there)
        logger.error("worker {}: the batch in flight outlasted the {:g}s grace; exiting, peers take its messages",
                     worker_id, settings.shutdown_grace_s)
        presence.mark_dead()
        os._exit(1)

    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutting_down.connect(on_shutdown, weak=False)
    _quiet_task_lines(worker.loglevel)
    presence.start()  # registered before the first message is taken
    try:
        worker.start()
    finally:
        for batcher in batchers:
            batcher.close()
        if fleet_metrics is not None:  # what the batchers and steps recorded is written before the process goes
            from workers.tasks import metrics

            fleet_metrics.flush()
            metrics().flush()
        presence.leave()
    raise SystemExit(worker.exitcode or 0)


def run_webhook_worker(settings: WorkerSettings, loglevel: str = "INFO", concurrency: int = 8) -> None:
    """A worker for the ``webhooks`` queue only: deliveries wait on other people's servers, so
    they never take a model worker's batching threads."""
    from workers.celery_app import WEBHOOK_QUEUE, app

    worker_id = f"webhooks@{socket.gethostname()}.{os.getpid()}"
    worker = app.Worker(hostname=worker_id, queues=[WEBHOOK_QUEUE], pool="threads", concurrency=concurrency,
                        loglevel=loglevel, without_gossip=True, without_mingle=True)
    _run_with_claims(app, worker, worker_id, settings, None, [], {WEBHOOK_QUEUE})


#: Celery's loggers of a line per task ("Task ... received", "Task ... succeeded in ...s")
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


def _quiet_task_lines(loglevel: str | int) -> None:
    """Celery's INFO lines per task only at DEBUG ("received", "succeeded in", "raised expected",
    "retry"): the worker logs its own (a step that ran, a step that failed, a webhook retried), and
    formatting Celery's cost a worker 0.5 ms of CPU per message (a no-op task through this
    transport, 2 cores: 2.48 ms per message with them, 1.99 without). Set before the worker
    starts: Celery asks its loggers' level once, when it builds its tracer and task strategies."""
    if mlevel(loglevel) > logging.DEBUG:
        for name in CELERY_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def _consume_only(consumer, queues: set[str], worker_id: str) -> None:
    """Remote control may add a queue to a worker (``celery control add_consumer``, sent to all
    workers by Flower's button): a worker holding no model for it would take its messages and
    put each back as misrouted, over and over, scrambling their order. It declines instead."""
    add_task_queue = consumer.add_task_queue

    def add_only_own(queue, *args, **kwargs):
        if queue not in queues:
            logger.warning("worker {}: not consuming {!r} as asked: it serves only {}", worker_id, queue,
                           ", ".join(sorted(queues)))
            return None
        return add_task_queue(queue, *args, **kwargs)

    consumer.add_task_queue = add_only_own


def _more_instances(first, config: ModelConfig, device: str | None) -> list:
    """The copies of a model beyond the first (``config.instances``), loaded and warmed as it was."""
    copies = [load_model(config, device=device) for _ in range(config.instances - 1)]
    for copy in copies:
        copy.warm_up()
        copy.observer = first.observer
    return copies


def _pin_threads(settings: WorkerSettings, configs: list[ModelConfig]) -> None:
    import torch

    # torch has one intra-op pool per process: as wide as the widest model's instances
    # (``SPEECHFLEET_TORCH_THREADS`` overrides)
    torch.set_num_threads(settings.torch_threads or max(config.threads for config in configs))
