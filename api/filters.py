"""HSE's post_generation_filters: each named audio conversion model (or toolchain) adds its
steps to the job, run on their own models' queues after the audio is generated."""

from __future__ import annotations

from api.catalog import ModelCatalog
from api.protocol.common import PostGenerationFilter
from speechmodels.registry import AUDIO_CONVERSION


def filter_steps(catalog: ModelCatalog, filters: list[PostGenerationFilter] | None) -> list[tuple[str, str]]:
    """``(model, capability)`` for each step the filters add, in order; 404/400 for a filter
    that names no configured audio conversion model."""
    steps = []
    for index, item in enumerate(filters or []):
        # a filter may be a toolchain too (voicefixer): all its steps join the job
        steps += catalog.chain(item.model, AUDIO_CONVERSION, param=f"post_generation_filters.{index}.model").steps
    return steps
