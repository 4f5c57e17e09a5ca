"""Where everything the fleet keeps lives in Redis (one place, so a key is never spelt twice)."""

from __future__ import annotations

JOB_PREFIX = "speechfleet:job:"  # the record: a hash
INPUT_PREFIX = "speechfleet:job-input:"  # the job's input (msgpack), kept out of the Celery message
STEP_OUTPUT_PREFIX = "speechfleet:job-step:"  # a step's packed output, read by later steps and streams
RESULT_DATA_PREFIX = "speechfleet:job-output:"  # a job's binary result (audio), beside its JSON result
#: jobs not yet finished, scored by their last sign of progress (sent, started); the lost-job
#: sweeper looks here for jobs that went quiet
PENDING_KEY = "speechfleet:jobs:pending"
#: every job state change worth waking a waiter for (an ending, a finished part) is published here
EVENTS_CHANNEL = "speechfleet:job-events"
CONSUMERS_PREFIX = "speechfleet:consumers:"  # per model: live workers, scored by last heartbeat
CARD_PREFIX = "speechfleet:model-card:"  # per model: what a loaded model says about itself
WEBHOOK_STATE_PREFIX = "speechfleet:webhook:"  # per job: 'delivering' (a claim with a TTL) or 'delivered'
SWEEPER_LOCK_KEY = "speechfleet:lost-job-sweeper"
#: every worker process, scored by its last beat (workers.claims.Presence); a worker silent for
#: the heartbeat TTL is dead and its claimed messages go back to their queues
WORKERS_KEY = "speechfleet:workers"
#: kombu delivery tag -> the worker holding that message (written with kombu's unacked entry)
CLAIMS_KEY = "speechfleet:claims"
CLAIM_RECOVERY_LOCK_KEY = "speechfleet:claim-recovery"
METRICS_PREFIX = "speechfleet:metrics:"
#: realtime sessions open, scored by when their last beat expires: all of them (for /metrics)
#: and per tenant (the sessions-per-key limit, shared by every API replica)
REALTIME_SESSIONS_KEY = "speechfleet:realtime:sessions"
REALTIME_TENANT_SESSIONS_PREFIX = "speechfleet:realtime:tenant-sessions:"
REALTIME_SECRET_PREFIX = "speechfleet:realtime:secret:"  # a client secret's SHA-256 -> its tenant and session
REALTIME_ITEMS_PREFIX = "speechfleet:realtime:items:"  # per session: its committed turns and their jobs
#: the voice library: per tenant, a hash of voice id -> the voice (JSON: name, embeddings per
#: toolchain), and per voice its reference clip (base64)
VOICES_PREFIX = "speechfleet:voices:"
VOICE_SAMPLE_PREFIX = "speechfleet:voice-sample:"


def job_key(job_id: str) -> str:
    return JOB_PREFIX + job_id


def input_key(job_id: str) -> str:
    return INPUT_PREFIX + job_id


def step_output_key(job_id: str, step: int) -> str:
    return f"{STEP_OUTPUT_PREFIX}{job_id}:{step}"


def result_data_key(job_id: str) -> str:
    return RESULT_DATA_PREFIX + job_id


def step_field(step: int) -> str:
    """The record's hash field holding a step's progress (name, worker, timings)."""
    return f"step.{step}"


def consumers_key(model_name: str) -> str:
    return CONSUMERS_PREFIX + model_name


def card_key(model_name: str) -> str:
    """What a loaded model says about itself (languages, voices), for listings and early
    validation in the API, which never loads models."""
    return CARD_PREFIX + model_name


def webhook_state_key(job_id: str) -> str:
    return WEBHOOK_STATE_PREFIX + job_id


def realtime_tenant_sessions_key(tenant: str) -> str:
    return REALTIME_TENANT_SESSIONS_PREFIX + tenant


def realtime_secret_key(digest: str) -> str:
    return REALTIME_SECRET_PREFIX + digest


def realtime_items_key(session_id: str) -> str:
    return REALTIME_ITEMS_PREFIX + session_id


def voices_key(tenant: str) -> str:
    return VOICES_PREFIX + tenant


def voice_sample_key(tenant: str, voice_id: str) -> str:
    return f"{VOICE_SAMPLE_PREFIX}{tenant}:{voice_id}"
