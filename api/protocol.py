"""Schemas shared by several routes: HSE model cards and job views."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.errors import error_body
from workers.jobs import JobRecord


class CallbackOption(BaseModel):
    """Any POST may name a URL to be told when its job ends (a signed Standard Webhooks POST)."""

    callback_url: str | None = Field(default=None, max_length=2048,
                                     description="http(s) URL that receives the finished job as a signed webhook")


AudioFormatName = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]


class AudioOutputOptions(BaseModel):
    """HSE's output_options for routes that answer with audio."""

    model_config = ConfigDict(extra="allow")

    format: AudioFormatName | None = Field(default=None, description="wav when unset")
    sample_rate: int | None = Field(default=None, ge=8_000, le=48_000, description="the model's own when unset")


class PostGenerationFilter(BaseModel):
    """One of HSE's post_generation_filters: an audio conversion model (a denoiser, a restorer)
    run on the generated audio, as one more step of the same job."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="a configured audio conversion model, e.g. rnnoise")


class VoiceOptions(BaseModel):
    voice: str = "default"
    styles: list[str] = Field(default_factory=list)


class LanguageOptions(BaseModel):
    language: str = "default"
    voices: list[VoiceOptions] = Field(default_factory=list)


class ModelCard(BaseModel):
    id: str
    object: Literal["model", "toolchain"] = "model"
    created: int
    owned_by: str = "speechfleet"
    root: str | None = None
    parent: str | None = None
    languages: list[LanguageOptions] = Field(default_factory=list)
    # speechfleet additions, ignored by HSE clients
    model_type: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list, description="a toolchain's models, in the order they run "
                             "(for the capability listed, else its first)")
    routes: dict[str, list[str]] = Field(default_factory=dict,
                                         description="a toolchain's models for each capability it serves")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard] = Field(default_factory=list)


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
                   priority=record.priority, deadline_at=record.deadline_at, callback_url=record.callback_url,
                   webhook_attempts=record.webhook_attempts,
                   steps=[JobStep.model_validate(step) for step in record.steps], error=error,
                   result_url=f"/v1/jobs/{record.id}/result")
