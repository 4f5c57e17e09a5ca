"""What the configured models are and what each can do (read from config.yml and the
family registry; no model runtime is imported)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from api.errors import APIError, not_found
from jobcontract.capabilities import capability as declared
from speechmodels import ModelConfig, capabilities_of
from speechmodels.toolchains import TOOLCHAINS, Toolchain, ToolchainStep


@dataclass(frozen=True)
class Chain:
    """How a request's ``model`` runs: the configured models it takes, in order, each with the
    capability it runs as (one for a model, several for a toolchain)."""

    name: str  # what the caller named: a model or a toolchain
    links: list[tuple[ModelConfig, str]]
    #: fixed request fields the chain's steps need (ToolchainStep.request)
    fields: dict = field(default_factory=dict)

    @property
    def head(self) -> ModelConfig:
        return self.links[0][0]

    @property
    def head_capability(self) -> str:
        return self.links[0][1]

    @property
    def steps(self) -> list[tuple[str, str]]:
        """``(model name, capability)`` per step, as ``JobPlan.build`` takes them."""
        return [(model.name, step_capability) for model, step_capability in self.links]


class ModelCatalog:
    def __init__(self, configs: list[ModelConfig]):
        self.configs = {config.name: config for config in configs}
        self.capabilities = {config.name: capabilities_of(config) for config in configs}
        self.created = int(time.time())
        #: models whose requests are queued while no worker serves them (an autoscaler starts one)
        self.scale_from_zero = frozenset(config.name for config in configs if config.scale_from_zero)

    def require(self, name: str, capability: str, param: str = "model") -> ModelConfig:
        """The named model, or 404 if unknown / 400 if it cannot do ``capability``."""
        config = self.configs.get(name)
        if config is None:
            raise not_found(f"model '{name}' does not exist; see GET /v1/models", reason="model_not_found", param=param)
        if capability not in self.capabilities[name]:
            raise APIError(400, f"model '{name}' ({config.model_type}) does not do {declared(capability).label}",
                           reason="unsupported_model", param=param)
        return config

    def chain(self, name: str, capability: str, param: str = "model",
              provided: frozenset[str] = frozenset()) -> Chain:
        """A configured model, or a toolchain whose every family for ``capability`` is
        configured; 404 for a toolchain that cannot run here (never a queued job that no
        worker will take). Toolchain steps whose output the request already ``provided``
        are left out."""
        toolchain = TOOLCHAINS.get(name)
        if toolchain is None or name in self.configs:
            return Chain(name, [(self.require(name, capability, param), capability)])
        steps = toolchain.routes.get(capability)
        if steps is None:
            raise APIError(400, f"toolchain '{name}' does not do {declared(capability).label}",
                           reason="unsupported_model",
                           param=param)
        # only the steps this request needs must be configured: one that brings its embedding
        # runs without the VAD and encoder models
        steps = [step for step in steps if not provided.intersection(step.skipped_by)]
        if not steps:
            raise APIError(400, f"the request brings everything toolchain '{name}' would produce",
                           reason="nothing_to_do", param=param)
        models = self._step_models(steps)
        if None in models:
            missing = ", ".join(step.model_type or f"any {step.capability} model"
                                for model, step in zip(models, steps) if model is None)
            raise not_found(f"toolchain '{name}' needs a configured model of each of: {missing} (not configured here)",
                            reason="toolchain_unavailable", param=param)
        return Chain(name, [(model, step.capability) for model, step in zip(models, steps)],
                     {key: value for step in steps for key, value in step.request.items()})

    def member(self, name: str, capability: str) -> ModelConfig:
        """The model that does ``capability``: the named model, or the toolchain step that
        does it (``/v1/embed/speaker`` on "harmonyspeech" runs its speaker encoder)."""
        toolchain = TOOLCHAINS.get(name)
        if toolchain is None or name in self.configs:
            return self.require(name, capability)
        for steps in toolchain.routes.values():
            for model, step in zip(self._step_models(steps), steps):
                if step.capability == capability and model is not None:
                    return model
        raise APIError(404, f"toolchain '{name}' has no configured step that does {declared(capability).label}",
                       reason="toolchain_unavailable", param="model")

    def is_toolchain(self, name: str) -> bool:
        """A toolchain's name (a configured model of the same name wins)."""
        return name in TOOLCHAINS and name not in self.configs

    def toolchain_models(self, steps: Sequence[ToolchainStep]) -> list[ModelConfig] | None:
        """The configured model for each step, or None if a family is missing. Models loaded
        from the same weights (one repo holds a toolchain's parts, as harmony-speech-v1 does)
        are preferred together; otherwise the first configured model of each family."""
        models = self._step_models(steps)
        return None if None in models else models

    def _step_models(self, steps: Sequence[ToolchainStep]) -> list[ModelConfig | None]:
        by_source: dict[str, dict[str, ModelConfig]] = {}
        for config in self.configs.values():
            by_source.setdefault(config.model, {}).setdefault(config.model_type, config)
        families = [step.model_type for step in steps if step.model_type]
        # the source that holds the most of the chain's families
        together = max(by_source.values(), key=lambda family: sum(name in family for name in families), default={})
        return [together.get(step.model_type) or self._model_of(step) for step in steps]

    def _model_of(self, step: ToolchainStep) -> ModelConfig | None:
        """The first configured model of the step's family; for a step open to any family, the
        first that does only its capability (silero-vad before a Whisper model that also
        does VAD), else the first that does it at all."""
        if step.model_type:
            return next((config for config in self.configs.values() if config.model_type == step.model_type), None)
        able = [name for name in self.configs if step.capability in self.capabilities[name]]
        dedicated = [name for name in able if self.capabilities[name] == {step.capability}]
        return self.configs[(dedicated or able)[0]] if able else None

    def runnable_routes(self, toolchain: Toolchain) -> dict[str, list[ModelConfig]]:
        """The toolchain's capabilities this deployment can run, each with its models."""
        if toolchain.name in self.configs:
            return {}
        routes = {capability: self.toolchain_models(steps) for capability, steps in toolchain.routes.items()}
        return {capability: models for capability, models in routes.items() if models is not None}

    def toolchains(self, capability: str | None = None) -> list[tuple[Toolchain, dict[str, list[ModelConfig]]]]:
        """The toolchains this deployment can run (for ``capability`` as a whole or as a
        step of one of its own families: ``openvoice_v1`` is listed for embeddings, not for
        the VAD any model can do for it), each with its runnable routes."""
        listed = []
        for toolchain in TOOLCHAINS.values():
            routes = self.runnable_routes(toolchain)
            if routes and (capability is None or any(
                    capability == route or any(step.capability == capability and step.model_type
                                               for step in toolchain.routes[route])
                    for route in routes)):
                listed.append((toolchain, routes))
        return listed

    def serving(self, capability: str | None = None) -> list[ModelConfig]:
        return [config for name, config in self.configs.items()
                if capability is None or capability in self.capabilities[name]]
