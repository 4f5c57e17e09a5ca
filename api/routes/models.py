"""GET /v1/models and one listing per capability, as HSE model cards."""

from __future__ import annotations

from fastapi import APIRouter

from api.catalog import ModelCatalog
from api.deps import CatalogDep
from api.protocol import LanguageOptions, ModelCard, ModelList, VoiceOptions
from speechmodels import ModelConfig
from speechmodels.registry import SPEAKER_EMBEDDING, TRANSCRIPTION, VAD

router = APIRouter(tags=["models"])

# capability -> the listing path HSE clients use for it
CAPABILITY_LISTINGS = {
    VAD: "/v1/audio/vad/models",
    SPEAKER_EMBEDDING: "/v1/embed/models",
    TRANSCRIPTION: "/v1/audio/transcriptions/models",
}


def model_card(catalog: ModelCatalog, config: ModelConfig) -> ModelCard:
    voices = [VoiceOptions(voice=voice) for voice in config.voices or []]
    languages = [LanguageOptions(language=config.language or "default", voices=voices)] if config.language or voices else []
    return ModelCard(id=config.name, created=catalog.created, root=config.model, languages=languages,
                     model_type=config.model_type, capabilities=sorted(catalog.capabilities[config.name]))


@router.get("/v1/models", response_model=ModelList)
async def list_models(catalog: CatalogDep) -> ModelList:
    return ModelList(data=[model_card(catalog, config) for config in catalog.serving()])


def _listing(capability: str):
    async def list_capability_models(catalog: CatalogDep) -> ModelList:
        return ModelList(data=[model_card(catalog, config) for config in catalog.serving(capability)])

    return list_capability_models


for _capability, _path in CAPABILITY_LISTINGS.items():
    router.add_api_route(_path, _listing(_capability), methods=["GET"], response_model=ModelList,
                         name=f"list_{_capability}_models", summary=f"List models that do {_capability}")
