"""Celery settings, from speechfleet's environment settings.

The choices that keep accepted jobs from being lost: late acks (a job is acknowledged only
after it ran), and workers that claim what they take (``workers.claims``: a dead worker's
messages go back to their queues a heartbeat TTL after its last beat, and a live holder keeps
its messages fresh, so the visibility timeout never redelivers a running task). The
visibility timeout is the last resort, for a message nobody claimed; kombu looks for those
every ``unacked_restore_interval_s``. ``task_reject_on_worker_lost`` only matters for a
prefork pool (workers use threads).
"""

from jobcontract.priorities import PRIORITY_SEP, PRIORITY_STEPS
from jobcontract.settings import fleet_settings

_settings = fleet_settings()

broker_url = _settings.redis_url
result_backend = _settings.redis_url
broker_connection_retry_on_startup = True
broker_transport_options = {
    "visibility_timeout": _settings.visibility_timeout_s,
    "unacked_restore_interval": _settings.unacked_restore_interval_s,
    "unacked_restore_throttle": 1,
    "socket_connect_timeout": 2,
    # request priorities: one list per step, served in step order (0 first)
    "priority_steps": PRIORITY_STEPS,
    "sep": PRIORITY_SEP,
    "queue_order_strategy": "priority",
}
result_backend_transport_options = {"visibility_timeout": _settings.visibility_timeout_s}

# messages carry only ids (inputs wait in Redis beside the job record): plain JSON
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]

task_acks_late = True
task_reject_on_worker_lost = True
task_acks_on_failure_or_timeout = True
task_track_started = False
task_ignore_result = True  # results travel in job records (see jobcontract.record), not the result backend
result_expires = _settings.job_ttl_s
task_publish_retry = False  # the API turns a broker outage into a fast 503 instead of retrying
task_default_queue = "speechfleet.default"

worker_prefetch_multiplier = 1
worker_hijack_root_logger = False
worker_send_task_events = _settings.send_task_events
task_send_sent_event = _settings.send_task_events
