"""Start a worker process: load its models, give each a micro-batcher, heartbeat, and
consume each model's queue with a thread pool wide enough to fill the batches."""

from __future__ import annotations

import os
import socket
import time

import redis
from loguru import logger

from jobcontract.settings import WorkerSettings
from speechmodels import ModelConfig, load_model
from workers import runtime
from workers.batcher import MicroBatcher
from workers.liveness import Heartbeat, publish_card
from workers.metrics import WorkerMetrics
from workers.recovery import LostJobSweeper


def pool_threads(configs: list[ModelConfig]) -> int:
    """Two batches' worth of task threads per model: one batch runs while the next fills."""
    return sum(2 * config.max_batch_size for config in configs)


def run_worker(configs: list[ModelConfig], settings: WorkerSettings, device: str | None = None,
               loglevel: str = "INFO") -> None:
    _pin_threads(settings)
    fleet_metrics = WorkerMetrics(redis.Redis.from_url(settings.redis_url))
    for config in configs:
        started = time.perf_counter()
        model = load_model(config, device=device)
        model.warm_up()
        batcher = MicroBatcher(model.infer_batch, max_batch_size=config.max_batch_size,
                               max_wait_ms=config.max_wait_ms, name=config.name,
                               on_batch=lambda stats, name=config.name: fleet_metrics.batch(name, stats.batch_size))
        runtime.SERVED[config.name] = runtime.ServedModel(config, model, batcher)
        languages = model.language_voices()
        if languages is not None:
            publish_card(redis.Redis.from_url(settings.redis_url), config.name, languages, model.voices())
        logger.info("loaded {} ({}) on {} in {:.2f}s; batches of up to {}, {} ms wait", config.name,
                    config.model_type, model.device, time.perf_counter() - started, config.max_batch_size, config.max_wait_ms)

    from workers.celery_app import (
        app,  # imported after the models, so a bad config fails before connecting
    )

    worker_id = f"{'+'.join(c.name for c in configs)}@{socket.gethostname()}.{os.getpid()}"
    heartbeat = Heartbeat(redis.Redis.from_url(settings.redis_url), worker_id, [c.name for c in configs],
                          settings.heartbeat_interval_s, settings.heartbeat_ttl_s)
    # kombu restores what it recorded as unacked after the visibility timeout; the sweeper
    # waits that long (and one restore sweep more) before it looks for messages lost outright
    sweeper = LostJobSweeper(redis.Redis.from_url(settings.redis_url, decode_responses=True), app, worker_id,
                             quiet_after_s=settings.visibility_timeout_s + settings.unacked_restore_interval_s,
                             interval_s=settings.lost_job_sweep_interval_s)
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
    from celery import signals

    # consumers are announced only once Celery is really consuming, and withdrawn on shutdown
    def on_ready(**_):
        heartbeat.start()
        sweeper.start()

    def on_shutdown(**_):
        heartbeat.stop()
        sweeper.stop()

    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutting_down.connect(on_shutdown, weak=False)
    try:
        worker.start()
    finally:
        for served in runtime.SERVED.values():
            served.batcher.close()
    raise SystemExit(worker.exitcode or 0)


def run_webhook_worker(settings: WorkerSettings, loglevel: str = "INFO", concurrency: int = 8) -> None:
    """A worker for the ``webhooks`` queue only: deliveries wait on other people's servers, so
    they never take a model worker's batching threads."""
    from workers.celery_app import WEBHOOK_QUEUE, app

    worker = app.Worker(hostname=f"webhooks@{socket.gethostname()}.{os.getpid()}", queues=[WEBHOOK_QUEUE],
                        pool="threads", concurrency=concurrency, loglevel=loglevel, without_gossip=True,
                        without_mingle=True)
    worker.start()
    raise SystemExit(worker.exitcode or 0)


def _pin_threads(settings: WorkerSettings) -> None:
    import torch

    threads = settings.torch_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
