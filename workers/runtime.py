"""The models this worker process serves, each with its micro-batcher (filled at start-up
by ``workers.worker_main``, read by the inference task)."""

from __future__ import annotations

from dataclasses import dataclass

from speechmodels import ModelConfig, SpeechModel
from workers.batcher import MicroBatcher


@dataclass
class ServedModel:
    config: ModelConfig
    model: SpeechModel
    batcher: MicroBatcher


SERVED: dict[str, ServedModel] = {}
