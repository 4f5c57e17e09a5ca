"""Model configuration: HSE's ``config.yml`` ``model_configs`` schema plus fleet fields."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class DeviceConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    device: str = "cpu"


class ModelConfig(BaseModel):
    """One entry of ``model_configs``.

    HSE fields are kept with their names so an HSE ``config.yml`` loads unchanged; unknown
    HSE fields are tolerated (``extra="allow"``) rather than rejected.
    """

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    model: str = Field(min_length=1, description="local path, 'package:<name>[/<subpath>]' or HF repo id; "
                       "'<part> + <part>' for a model split across sources")
    model_type: str
    max_batch_size: int = Field(default=16, ge=1, le=1024)
    dtype: str = "float32"
    device_config: DeviceConfig = Field(default_factory=DeviceConfig)
    language: str | None = None
    voices: list[str] | None = None
    load_format: str = "auto"
    revision: str | None = None
    seed: int | None = None
    # fleet fields
    max_wait_ms: float = Field(default=10.0, ge=0, le=10_000, description="longest a batch waits to fill")
    options: dict = Field(default_factory=dict, description="family-specific settings")
    scale_from_zero: bool = Field(default=False, description="accept and queue this model's jobs while no worker "
                                  "serves it (an autoscaler starts one on the queue's depth)")
    # how a worker spends its cores on this model (unset: the family's choice for the cores the
    # worker owns, see workers.parallelism); instances x threads is what one worker may keep busy
    threads: int | None = Field(default=None, ge=1, le=256, description="intra-op threads of each instance "
                                "(onnxruntime intra_op_num_threads, CTranslate2 cpu_threads, torch threads)")
    instances: int | None = Field(default=None, ge=1, le=64, description="copies of the model in one worker, each "
                                  "with its own batching thread on the model's one queue (Triton's instance_group "
                                  "count)")
    sha256: dict[str, str] = Field(default_factory=dict,
                                   description="expected sha256 of weight files by name, checked when a split "
                                               "model's parts are joined")

    @field_validator("sha256")
    @classmethod
    def _hex_digests(cls, value: dict[str, str]) -> dict[str, str]:
        for name, digest in value.items():
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                raise ValueError(f"sha256 of {name!r} is not 64 hex digits")
        return {name: digest.lower() for name, digest in value.items()}

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value not in {"auto", "float32", "float16", "bfloat16"}:
            raise ValueError(f"unsupported dtype {value!r}")
        return value

    @model_validator(mode="after")
    def _threads_from_options(self) -> ModelConfig:
        # the family options that named threads before ``threads`` existed still count
        legacy = self.options.get("intra_op_threads", self.options.get("cpu_threads"))
        if self.threads is None and legacy:
            try:
                self.threads = int(legacy)
            except (TypeError, ValueError):
                raise ValueError(f"options.intra_op_threads / cpu_threads must be a whole number, not {legacy!r}") from None
            if self.threads < 1:
                raise ValueError("options.intra_op_threads / cpu_threads must be at least 1")
        return self

    @property
    def queue(self) -> str:
        return queue_for(self.name)


def queue_for(model_name: str) -> str:
    """The Celery queue that carries a model's work."""
    return f"model.{model_name}"


class ConfigError(ValueError):
    """The config file is missing, unreadable or invalid."""


def load_model_configs(path: str | Path) -> list[ModelConfig]:
    """Read ``model_configs`` from a YAML file, with one clear error for any problem."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    entries = document.get("model_configs") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"config {path} has no 'model_configs' list")
    try:
        configs = [ModelConfig.model_validate(entry) for entry in entries]
    except ValidationError as exc:
        raise ConfigError(f"config {path}: {exc}") from exc
    names = [config.name for config in configs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"config {path}: duplicate model names {duplicates}")
    return configs
