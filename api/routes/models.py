"""GET /v1/models and one listing per capability, as HSE model cards."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from api.catalog import ModelCatalog
from api.deps import CatalogDep
from api.protocol import LanguageOptions, ModelCard, ModelList, VoiceOptions
from speechmodels import ModelConfig
from speechmodels.registry import (
    AUDIO_CONVERSION,
    SPEAKER_EMBEDDING,
    SPEECH_SYNTHESIS,
    TRANSCRIPTION,
    VAD,
    VOICE_CONVERSION,
)
from workers.liveness import card_key

router = APIRouter(tags=["models"])

# capability -> the listing path HSE clients use for it
CAPABILITY_LISTINGS = {
    VAD: "/v1/audio/vad/models",
    SPEAKER_EMBEDDING: "/v1/embed/models",
    TRANSCRIPTION: "/v1/audio/transcriptions/models",
    SPEECH_SYNTHESIS: "/v1/audio/speech/models",
    AUDIO_CONVERSION: "/v1/audio/convert/models",
    VOICE_CONVERSION: "/v1/voice/convert/models",
}


def model_card(catalog: ModelCatalog, config: ModelConfig, published: dict | None) -> ModelCard:
    """A model's card: languages and voices as its loaded workers published them, else as
    its config lists them."""
    if published and published.get("languages"):
        languages = [LanguageOptions(language=language, voices=[VoiceOptions(voice=voice) for voice in voices])
                     for language, voices in published["languages"].items()]
    else:
        voices = [VoiceOptions(voice=voice) for voice in config.voices or []]
        languages = [LanguageOptions(language=config.language or "default", voices=voices)] \
            if config.language or voices else []
    return ModelCard(id=config.name, created=catalog.created, root=config.model, languages=languages,
                     model_type=config.model_type, capabilities=sorted(catalog.capabilities[config.name]))


async def model_cards(request: Request, catalog: ModelCatalog, capability: str | None = None) -> ModelList:
    """The configured models, then the toolchains they complete (``object: "toolchain"``)."""
    configs = catalog.serving(capability)
    raw = await request.app.state.redis.mget([card_key(config.name) for config in configs]) if configs else []
    toolchains = [ModelCard(id=toolchain.name, object="toolchain", created=catalog.created,
                            capabilities=list(routes),
                            steps=[model.name for model in routes.get(capability, next(iter(routes.values())))],
                            routes={route: [model.name for model in models] for route, models in routes.items()})
                  for toolchain, routes in catalog.toolchains(capability)]
    return ModelList(data=[*(model_card(catalog, config, json.loads(card) if card else None)
                             for config, card in zip(configs, raw)), *toolchains])


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request, catalog: CatalogDep) -> ModelList:
    return await model_cards(request, catalog)


def _listing(capability: str):
    async def list_capability_models(request: Request, catalog: CatalogDep) -> ModelList:
        return await model_cards(request, catalog, capability)

    return list_capability_models


for _capability, _path in CAPABILITY_LISTINGS.items():
    router.add_api_route(_path, _listing(_capability), methods=["GET"], response_model=ModelList,
                         name=f"list_{_capability}_models", summary=f"List models that do {_capability}")
