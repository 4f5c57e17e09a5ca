"""The job view (``GET /v1/jobs/{id}``, and the body of a 202)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.errors import error_body
from jobcontract.callbacks import redacted_url
from jobcontract.record import JobRecord


class JobStep(BaseModel):
    model_config = {"extra": "allow"}

    name: str
    model: str
    queue: str
    status: str
    started_at: float | None = None
    finished_at: float | None = None
    queue_wait_ms: float | None = None
    batch_size: int | None = None
    batch_wait_ms: float | None = None
    inference_ms: float | None = None
    worker: str | None = None
    message_jobs: int | None = Field(default=None, description="one-step jobs that came to the worker in this "
                                     "step's message (sent together because they reached the API at once)")
    from_job: str | None = Field(default=None, description="the job whose run of this step this job reuses (a "
                                 "streamed file's first piece, transcribed first as a job of its own)")


class JobView(BaseModel):
    id: str
    object: Literal["job"] = "job"
    model: str
    capability: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    created: int
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    resent: int = 0
    priority: str = "normal"
    deadline_at: float | None = None
    callback_url: str | None = None
    webhook_attempts: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[JobStep] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    result_url: str

    @classmethod
    def of(cls, record: JobRecord) -> JobView:
        error = None
        if record.error is not None:
            error = error_body(record.error.status, record.error.message, reason=record.error.reason,
                               param=record.error.param, job_id=record.id)
        return cls(id=record.id, model=record.model, capability=record.capability, status=record.status,
                   created=int(record.created_at), created_at=record.created_at, started_at=record.started_at,
                   finished_at=record.finished_at, attempts=record.attempts, resent=record.resent,
                   priority=record.priority, deadline_at=record.deadline_at,
                   callback_url=redacted_url(record.callback_url) if record.callback_url else None,
                   webhook_attempts=record.webhook_attempts,
                   steps=[JobStep.model_validate(step) for step in record.steps], error=error,
                   result_url=f"/v1/jobs/{record.id}/result")
