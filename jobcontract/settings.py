"""Service settings from the environment (``SPEECHFLEET_*``; nested with ``__``).

``FleetSettings`` is what both sides must agree on (Redis, job lifetime, bounds the worker
enforces again, liveness, webhook signing); ``APISettings`` and ``WorkerSettings`` add what
only one side reads. ``REDIS_URL`` is read without the prefix because that is what every
platform sets.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class FleetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHFLEET_", env_nested_delimiter="__", extra="ignore")

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "SPEECHFLEET_REDIS_URL"),
    )
    config: Path = Field(default=Path("config.yml"), description="model_configs YAML")

    job_ttl_s: int = Field(default=24 * 3600, ge=60, description="how long job records and results are kept")
    max_audio_seconds: float = Field(default=600.0, gt=0, description="checked by the API, again on the decoded audio")

    visibility_timeout_s: int = Field(
        default=30, ge=5, description="the last resort: an unacked message whose holder has not refreshed its claim "
        "for this long is redelivered (live workers refresh theirs every heartbeat, so no task is too long for it)"
    )
    unacked_restore_interval_s: int = Field(default=10, ge=1, description="how often kombu restores unacked jobs")
    heartbeat_interval_s: float = Field(default=2.0, gt=0)
    heartbeat_ttl_s: float = Field(default=6.0, gt=0, description="a consumer unseen this long counts as gone")
    send_task_events: bool = Field(default=False, description="emit Celery task events (for Flower)")

    webhook_secret: str = Field(default="", description="Standard Webhooks signing secret (whsec_<base64> or any string)")
    webhook_allow_private: bool = Field(default=False, description="allow callbacks to loopback/private addresses")

    @model_validator(mode="after")
    def _records_outlive_redelivery(self) -> FleetSettings:
        if self.job_ttl_s <= self.visibility_timeout_s:
            raise ValueError("job_ttl_s must exceed visibility_timeout_s")
        return self


class APISettings(FleetSettings):
    sync_wait_s: float = Field(default=120.0, gt=0, description="longest a synchronous request waits before 504")
    max_sync_wait_s: float = Field(default=600.0, gt=0, description="cap on 'Prefer: wait=N'")
    max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_inflight_body_bytes: int = Field(default=256 * 1024 * 1024, ge=1024, description="request body bytes one "
                                         "API process holds at once; beyond it new requests get 503 with Retry-After")
    # 1 turns it off (a message per job): do so while workers older than the API still run, since
    # they do not know the grouped task (README, "How a request flows")
    jobs_per_message: int = Field(default=8, ge=1, description="most one-step jobs of one model sent in one "
                                  "Celery message, when they reach the API while a send is under way (1: a message "
                                  "per job)")
    max_speech_chars: int = Field(default=4096, ge=1, description="longest text /v1/audio/speech accepts")
    redis_timeout_s: float = Field(default=1.0, gt=0, description="socket timeout of the API's Redis calls")
    transcription_stream_piece_s: float = Field(default=28.0, ge=2.0, le=30.0, description="stream=true "
                                                "transcriptions: longest piece of the audio one part of the job holds")
    transcription_stream_first_piece_s: float = Field(default=5.0, ge=2.0, le=30.0, description="stream=true "
                                                      "transcriptions: longest first piece (the first delta's); "
                                                      "each next piece may be twice as long, up to the longest")
    realtime_max_sessions_per_key: int = Field(default=16, ge=1, description="realtime sessions one API key may "
                                               "hold open at once (all replicas)")
    realtime_max_session_s: float = Field(default=3600.0, gt=0, description="longest a realtime session may last")
    realtime_idle_timeout_s: float = Field(default=120.0, gt=0, description="a realtime session that sends no "
                                           "event for this long is closed")
    realtime_max_buffer_s: float = Field(default=60.0, gt=0, description="uncommitted audio a realtime session "
                                         "may hold (server VAD commits a turn that reaches it)")
    realtime_vad_slice_ms: int = Field(default=200, ge=32, le=5000, description="least new audio per server-VAD "
                                       "job (more waits while one is in flight)")
    realtime_early_transcription_ms: int = Field(default=200, ge=0, description="server VAD: silence after which a "
                                                 "turn's transcription starts, before silence_duration_ms commits it "
                                                 "(dropped if the speech resumes); 0: only once committed")

    environment: Literal["development", "production"] = "development"
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated; once set, every /v1 route needs one of them")
    rate_limit_per_minute: int | None = Field(default=None, ge=1, description="requests per API key per minute")
    cors_origins: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="comma-separated origins browsers may call from; unset: any origin ('*') in "
        "development, none in production")
    cors_allow_any_origin: bool = Field(default=False, description="production only: allow '*' in cors_origins")
    public_listings: bool = Field(default=False, description="model and voice listings (GET /v1/models, "
                                  "/v1/audio/models, /v1/audio/voices, ...) answer without an API key")
    max_voices_per_tenant: int = Field(default=100, ge=1, description="saved voices one tenant may keep")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def allowed_origins(self) -> list[str]:
        """The origins CORS allows: as set, else any in development and none in production."""
        if self.cors_origins is None:
            return ["*"] if self.environment == "development" else []
        return self.cors_origins

    @model_validator(mode="after")
    def _no_open_cors_in_production(self) -> APISettings:
        if self.environment == "production" and "*" in (self.cors_origins or []) and not self.cors_allow_any_origin:
            raise ValueError("SPEECHFLEET_CORS_ORIGINS='*' in production lets any web page call the API with its "
                             "users' keys: list the origins, or set SPEECHFLEET_CORS_ALLOW_ANY_ORIGIN=true")
        return self

    @model_validator(mode="after")
    def _no_open_production(self) -> APISettings:
        if self.environment == "production" and not self.api_keys:
            raise ValueError("SPEECHFLEET_ENVIRONMENT=production needs SPEECHFLEET_API_KEYS: the API would be open")
        return self

    @model_validator(mode="after")
    def _records_outlive_waits(self) -> APISettings:
        if self.job_ttl_s <= self.max_sync_wait_s:
            raise ValueError("job_ttl_s must exceed max_sync_wait_s")
        return self


class WorkerSettings(FleetSettings):
    stream_keep_s: int = Field(default=600, ge=10, description="how long a streamed job's sentences outlive the job, "
                               "for a slow stream reader (a job that is not streamed drops them when it ends)")
    lost_job_sweep_interval_s: float = Field(default=5.0, gt=0, description="how often a worker looks for lost jobs")
    claim_recovery_interval_s: float = Field(default=1.0, gt=0, description="how often a worker looks for dead "
                                             "workers whose messages must go back to their queues")
    shutdown_grace_s: float = Field(default=30.0, gt=0, description="on SIGTERM, how long the batch in flight may "
                                    "take to finish before the worker exits anyway (its messages then go to peers)")
    model_timeout_s: float = Field(default=3600.0, gt=0, description="longest one step may wait on its model call")
    worker_cores: int | None = Field(default=None, ge=1, description="CPU cores a model worker spends on its models "
                                     "as instances and threads of each (default: the cores the process may run "
                                     "on; speechfleet serve sets it per worker)")
    torch_threads: int | None = Field(default=None, ge=1, description="torch's intra-op threads, overriding the "
                                      "widest model's threads")
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_backoff_s: float = Field(default=2.0, gt=0, description="first retry delay; doubles each attempt")
    webhook_max_attempts: int = Field(default=8, ge=1)


@lru_cache
def fleet_settings() -> FleetSettings:
    return FleetSettings()


@lru_cache
def api_settings() -> APISettings:
    return APISettings()


@lru_cache
def worker_settings() -> WorkerSettings:
    return WorkerSettings()
