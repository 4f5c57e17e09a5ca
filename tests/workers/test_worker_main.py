"""A model worker as ``speechfleet worker`` starts it, on the shared test fleet: remote control
cannot make it consume a queue it holds no model for. Celery's own line per task is for DEBUG."""

import logging
import time

import pytest
from celery import Celery

from workers.worker_main import CELERY_TASK_LOGGERS, _quiet_task_lines

QUEUE = "model.vad-aux"


def _own(hostname: str) -> bool:
    return "vad-aux" in hostname.partition("@")[0].split("+")  # ids are "<model>+<model>@host.pid"


def test_a_broadcast_add_consumer_reaches_only_the_queues_own_workers(fleet, redis_server, paused):
    control = Celery("control", broker=redis_server.url)
    others: set[str] = set()
    try:
        with paused("vad-aux"):
            # what Flower's "add consumer" sends: to every worker
            replies = control.control.add_consumer(QUEUE, reply=True, timeout=5)
            workers = {hostname for reply in replies for hostname in reply}
            assert any(_own(name) for name in workers) and any(not _own(name) for name in workers), workers
            others = {name for name in workers if not _own(name)}
            deadline = time.monotonic() + 15
            while True:  # the add is scheduled, not done, when a worker replies
                listed = control.control.inspect(destination=sorted(workers), timeout=1).active_queues() or {}
                consuming = {name for name, queues in listed.items() if QUEUE in {q["name"] for q in queues}}
                if set(listed) >= workers and any(_own(name) for name in consuming):
                    break
                assert time.monotonic() < deadline, listed
                time.sleep(0.2)
            assert consuming == {name for name in workers if _own(name)}, consuming
    finally:
        if others:  # had the guard failed, the other workers would bounce vad-aux's jobs for later tests
            control.control.cancel_consumer(QUEUE, destination=sorted(others), reply=True, timeout=5)
        control.close()


@pytest.fixture
def celery_task_loggers():
    loggers = [logging.getLogger(name) for name in CELERY_TASK_LOGGERS]
    levels = [logger.level for logger in loggers]
    yield loggers
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


@pytest.mark.parametrize("loglevel", ["INFO", "info", logging.INFO, "WARNING"])
def test_celerys_task_received_and_succeeded_lines_are_off_above_debug(celery_task_loggers, loglevel):
    _quiet_task_lines(loglevel)
    for logger in celery_task_loggers:
        assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)


def test_at_debug_celerys_task_lines_stay(celery_task_loggers):
    parent = logging.getLogger("celery")
    level = parent.level
    parent.setLevel(logging.DEBUG)  # as Celery sets it for --loglevel DEBUG
    try:
        _quiet_task_lines("DEBUG")
        assert all(logger.isEnabledFor(logging.INFO) for logger in celery_task_loggers)
    finally:
        parent.setLevel(level)
