"""What the configured models are and what each can do (read from config.yml and the
family registry; no model runtime is imported)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from api.errors import APIError, not_found
from speechmodels import ModelConfig, capabilities_of
from speechmodels.toolchains import TOOLCHAINS, Toolchain


@dataclass(frozen=True)
class Plan:
    """How a request's ``model`` runs: its first step's model, and the steps after it."""

    name: str  # what the caller named: a model or a toolchain
    head: ModelConfig
    head_capability: str
    stages: list[dict] = field(default_factory=list)  # {"model", "capability"} per later step

    @property
    def steps(self) -> list[dict]:
        return [{"model": self.head.name, "capability": self.head_capability}, *self.stages]


class ModelCatalog:
    def __init__(self, configs: list[ModelConfig]):
        self.configs = {config.name: config for config in configs}
        self.capabilities = {config.name: capabilities_of(config) for config in configs}
        self.created = int(time.time())

    def require(self, name: str, capability: str, capability_label: str, param: str = "model") -> ModelConfig:
        """The named model, or 404 if unknown / 400 if it cannot do ``capability``."""
        config = self.configs.get(name)
        if config is None:
            raise not_found(f"model '{name}' does not exist; see GET /v1/models", reason="model_not_found", param=param)
        if capability not in self.capabilities[name]:
            raise APIError(400, f"model '{name}' ({config.model_type}) does not do {capability_label}",
                           reason="unsupported_model", param=param)
        return config

    def plan(self, name: str, capability: str, capability_label: str, param: str = "model",
             provided: frozenset[str] = frozenset()) -> Plan:
        """A configured model, or a toolchain whose every family is configured; 404 for a
        toolchain that cannot run here (never a queued job that no worker will take).
        Toolchain steps whose output the request already ``provided`` are left out."""
        toolchain = TOOLCHAINS.get(name)
        if toolchain is None or name in self.configs:
            return Plan(name, self.require(name, capability, capability_label, param), capability)
        if toolchain.capability != capability:
            raise APIError(400, f"toolchain '{name}' does not do {capability_label}", reason="unsupported_model",
                           param=param)
        models = self.toolchain_models(toolchain)
        if models is None:
            needed = ", ".join(step.model_type for step in toolchain.steps)
            raise not_found(f"toolchain '{name}' needs a configured model of each of: {needed}",
                            reason="toolchain_unavailable", param=param)
        first, *rest = [(model, step) for model, step in zip(models, toolchain.steps)
                        if step.provided_by not in provided]
        return Plan(name, first[0], first[1].capability,
                    [{"model": model.name, "capability": step.capability} for model, step in rest])

    def member(self, name: str, capability: str, capability_label: str) -> ModelConfig:
        """The model that does ``capability``: the named model, or the toolchain step that
        does it (``/v1/embed/speaker`` on "harmonyspeech" runs its speaker encoder)."""
        toolchain = TOOLCHAINS.get(name)
        if toolchain is None or name in self.configs:
            return self.require(name, capability, capability_label)
        models = self.toolchain_models(toolchain)
        for model, step in zip(models or [], toolchain.steps):
            if step.capability == capability:
                return model
        raise APIError(400 if models else 404, f"toolchain '{name}' has no configured step that does "
                       f"{capability_label}", reason="unsupported_model", param="model")

    def is_toolchain(self, name: str) -> bool:
        """A toolchain's name (a configured model of the same name wins)."""
        return name in TOOLCHAINS and name not in self.configs

    def toolchain_models(self, toolchain: Toolchain) -> list[ModelConfig] | None:
        """The configured model for each step, or None if a family is missing. Models loaded
        from the same weights (one repo holds a toolchain's parts, as harmony-speech-v1 does)
        are preferred together; otherwise the first configured model of each family."""
        by_source: dict[str, dict[str, ModelConfig]] = {}
        for config in self.configs.values():
            by_source.setdefault(config.model, {}).setdefault(config.model_type, config)
        for family in by_source.values():
            if all(step.model_type in family for step in toolchain.steps):
                return [family[step.model_type] for step in toolchain.steps]
        models = []
        for step in toolchain.steps:
            config = next((c for c in self.configs.values() if c.model_type == step.model_type), None)
            if config is None:
                return None
            models.append(config)
        return models

    def toolchains(self, capability: str | None = None) -> list[Toolchain]:
        """The toolchains this deployment can run, for ``capability`` as a whole or as a step."""
        return [t for t in TOOLCHAINS.values()
                if (capability is None or t.capability == capability or any(s.capability == capability for s in t.steps))
                and t.name not in self.configs and self.toolchain_models(t) is not None]

    def serving(self, capability: str | None = None) -> list[ModelConfig]:
        return [config for name, config in self.configs.items()
                if capability is None or capability in self.capabilities[name]]
