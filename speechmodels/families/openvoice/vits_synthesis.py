"""What the multi-speaker VITS synthesisers (OpenVoice V1's base speakers, MeloTTS) share on top
of the phoneme synthesisers': checking the configured language has a front end, loading the
checkpoint strictly without its training-only posterior encoder, the speaker (or style)
table as the voices, and one seeded model call per sentence."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from speechmodels.config import ModelConfig
from speechmodels.synthesis import PhonemeSynthesizer, SynthesisItem
from speechmodels.torch_state import fold_weight_norm, read_checkpoint
from speechmodels.weights import WeightsNotFound

# checkpoint entries that only train (the posterior encoder): dropped before the strict load
TRAINING_ONLY = ("enc_q.",)


class VitsSynthesizer(PhonemeSynthesizer):
    #: languages whose text front end is written
    languages: ClassVar[frozenset[str]]
    #: the family's own inference scales
    noise_scale: ClassVar[float]
    noise_scale_w: ClassVar[float]
    sdp_ratio: ClassVar[float] = 0.2

    def __init__(self, config: ModelConfig, device: str, network, language: str):
        super().__init__(config, device)
        self.network = network.to(device).eval()
        self.sample_rate = network.config.sampling_rate
        self.language_code = language
        self._speakers = self.speaker_table(network.config)
        # the checkpoint's alphabet, symbol -> id, built once for every sentence's tokens
        self.symbol_table = {symbol: index for index, symbol in enumerate(network.config.symbols)}
        self.default_voice = "default" if "default" in self._speakers else next(iter(self._speakers))

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> VitsSynthesizer:
        language = (config.language or "EN").upper()
        if language not in cls.languages:
            raise WeightsNotFound(f"{cls.__name__} {language!r}: only the {sorted(cls.languages)} text front end "
                                  "is written")
        weights, document = cls.find_weights(config, language)
        network = cls.build_network(document)
        state = {key: value for key, value in fold_weight_norm(read_checkpoint(weights, "model")).items()
                 if not key.startswith(TRAINING_ONLY)}
        network.load_state_dict(state, strict=True)
        return cls(config, device or config.device_config.device, network, language)

    @classmethod
    @abstractmethod
    def find_weights(cls, config: ModelConfig, language: str) -> tuple[Path, dict]:
        """The checkpoint file and its parsed ``config.json``."""

    @classmethod
    @abstractmethod
    def build_network(cls, document: dict) -> Any:
        """The network for a ``config.json``, to load the checkpoint into."""

    @staticmethod
    @abstractmethod
    def speaker_table(network_config: Any) -> dict[str, int]:
        """Voice name -> row of the speaker table."""

    @abstractmethod
    def token_tensors(self, token_ids: np.ndarray) -> dict:
        """One sentence's tokens as the network's input tensors, on the model's device."""

    def voices(self) -> list[str]:
        return list(self._speakers)

    def synthesize(self, token_ids: np.ndarray, item: SynthesisItem) -> np.ndarray:
        import torch

        generator = torch.Generator().manual_seed(item.seed) if item.seed is not None else None
        samples = self.network.synthesize(self.token_tensors(token_ids), self._speakers[item.voice],
                                          length_scale=1.0 / item.speed, noise_scale=self.noise_scale,
                                          noise_scale_w=self.noise_scale_w, sdp_ratio=self.sdp_ratio,
                                          generator=generator)
        return samples.float().cpu().numpy()
