"""HSE's model cards (``GET /v1/models`` and the per-capability listings)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


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
