"""What the configured models are and what each can do (read from config.yml and the
family registry; no model runtime is imported)."""

from __future__ import annotations

import time

from api.errors import APIError, not_found
from speechmodels import ModelConfig, capabilities_of


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

    def serving(self, capability: str | None = None) -> list[ModelConfig]:
        return [config for name, config in self.configs.items()
                if capability is None or capability in self.capabilities[name]]
