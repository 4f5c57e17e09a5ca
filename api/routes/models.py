"""GET /v1/models and one listing per capability, as HSE model cards."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request

from api.catalog import ModelCatalog
from api.deps import CatalogDep
from api.errors import APIError
from api.protocol.models import LanguageOptions, ModelCard, ModelList, VoiceOptions
from jobcontract.capabilities import CAPABILITIES
from jobcontract.keys import card_key
from speechmodels import ModelConfig
from speechmodels.registry import SPEAKER_EMBEDDING
from speechmodels.toolchains import TOOLCHAINS

router = APIRouter(tags=["models"])


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
    if capability == SPEAKER_EMBEDDING:
        toolchains += _encoder_cards(catalog, {card.id for card in toolchains})
    return ModelList(data=[*(model_card(catalog, config, json.loads(card) if card else None)
                             for config, card in zip(configs, raw)), *toolchains])


def _encoder_cards(catalog: ModelCatalog, listed: set[str]) -> list[ModelCard]:
    """Toolchains whose speaker encoder is configured, though the rest of them may not be:
    ``POST /v1/embed/speaker`` runs on their name (HSE lists ``harmonyspeech`` here)."""
    cards = []
    for name, toolchain in TOOLCHAINS.items():
        if name in listed or not catalog.is_toolchain(name):
            continue
        if not any(step.capability == SPEAKER_EMBEDDING and step.model_type
                   for steps in toolchain.routes.values() for step in steps):
            continue
        try:
            encoder = catalog.member(name, SPEAKER_EMBEDDING)  # what /v1/embed/speaker runs
        except APIError:
            continue
        cards.append(ModelCard(id=name, object="toolchain", created=catalog.created, capabilities=[SPEAKER_EMBEDDING],
                               steps=[encoder.name], routes={SPEAKER_EMBEDDING: [encoder.name]}))
    return cards


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request, catalog: CatalogDep) -> ModelList:
    return await model_cards(request, catalog)


def _listing(capability: str):
    async def list_capability_models(request: Request, catalog: CatalogDep) -> ModelList:
        return await model_cards(request, catalog, capability)

    return list_capability_models


# the listing path HSE clients use for each capability that has one
for _declared in CAPABILITIES.values():
    if _declared.listing:
        router.add_api_route(_declared.listing, _listing(_declared.name), methods=["GET"], response_model=ModelList,
                             name=f"list_{_declared.name}_models", summary=f"List models that do {_declared.label}")
