"""HSE's post_generation_filters: each named audio conversion model becomes one more step of
the job, run on its own model's queue after the audio is generated."""

from __future__ import annotations

from api.catalog import ModelCatalog
from api.protocol import PostGenerationFilter
from speechmodels.registry import AUDIO_CONVERSION


def filter_stages(catalog: ModelCatalog, filters: list[PostGenerationFilter] | None) -> list[dict]:
    """The job's stages for ``filters``, in order; 404/400 for a filter that names no
    configured audio conversion model."""
    stages = []
    for index, item in enumerate(filters or []):
        # a filter may be a toolchain too (voicefixer): all its steps join the job
        stages += catalog.plan(item.model, AUDIO_CONVERSION, "audio conversion",
                               param=f"post_generation_filters.{index}.model").steps
    return stages
