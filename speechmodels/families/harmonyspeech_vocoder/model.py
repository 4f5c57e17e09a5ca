"""``HarmonySpeechVocoder``: the synthesizer's mel -> 16 kHz speech, the last step of the
``harmonyspeech`` toolchain (HSE's layout: ``vocoder/config.json`` + ``vocoder/vocoder.pt``).

The mel is divided by 4 (the synthesizer's [-4, 4] scale to the vocoder's [-1, 1]); the
waveform is peak-normalised to 0.97, as HSE does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from speechmodels.base import InputError, TorchModel
from speechmodels.config import ModelConfig
from speechmodels.families.harmonyspeech_synthesizer.model import SynthesizedMel
from speechmodels.torch_state import fold_weight_norm, read_checkpoint
from speechmodels.tts import SynthesizedSpeech
from speechmodels.weights import find_part

SAMPLE_RATE = 16_000
MEL_SCALE = 4.0
PEAK = 0.97


class HarmonySpeechVocoder(TorchModel):

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> HarmonySpeechVocoder:
        from speechmodels.families.harmonyspeech_vocoder.network import (
            MelGANGenerator,
            VocoderConfig,
        )

        weights, document = find_part(config.model, config.revision, "vocoder", "vocoder.pt")
        network = MelGANGenerator(VocoderConfig.from_json(document))
        network.load_state_dict(fold_weight_norm(read_checkpoint(weights, "model", "generator")), strict=True)
        return cls(config, device or config.device_config.device, network)

    def prepare(self, request: Mapping[str, Any]) -> SynthesizedMel:
        try:
            return SynthesizedMel.from_bytes(request["mel"])
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"the input is not a synthesized mel: {exc}", param="mel") from None

    def warmup_request(self) -> dict:
        n_mels = self.network.melgan[1].in_channels
        return {"mel": SynthesizedMel(np.zeros((n_mels, 10), dtype=np.float32)).to_bytes()}

    def infer_batch(self, items: Sequence[SynthesizedMel]) -> list[SynthesizedSpeech | Exception]:
        import torch

        outputs: list[SynthesizedSpeech | Exception] = []
        for item in items:
            try:
                wave = self.network(torch.from_numpy(np.array(item.mel) / MEL_SCALE)[None].float().to(self.device))
                wave = wave[0].cpu().numpy()
                peak = float(np.abs(wave).max())
                outputs.append(SynthesizedSpeech((wave / peak * PEAK if peak > 0 else wave).astype(np.float32),
                                                 SAMPLE_RATE))
            except Exception as exc:
                outputs.append(exc)
        return outputs
