"""``OpenVoiceV1Synthesizer``: OpenVoice V1's base speaker, text -> speech in one of its
styles (the voices: default, whispering, shouting, excited, cheerful, terrified, angry, sad,
friendly on the English one). The synthesis step of the ``openvoice_v1`` toolchain, whose
tone converter then gives the speech a reference clip's tone colour; on its own it is a
plain multi-style TTS model.

Weights: ``checkpoints/base_speakers/<language>/config.json`` + ``checkpoint.pth`` in
``myshell-ai/OpenVoice`` (or a local folder); ``language`` in the model's config picks the
folder (``EN`` by default). Only the English front end is written: a ``ZH`` model refuses
to load rather than mispronounce.
"""

from __future__ import annotations

import numpy as np

from speechmodels.config import ModelConfig
from speechmodels.families.openvoice.text import english_ipa, symbol_ids
from speechmodels.synthesis import PhonemeSynthesizer, SynthesisItem
from speechmodels.torch_state import fold_weight_norm, read_checkpoint
from speechmodels.tts import split_sentences
from speechmodels.weights import WeightsNotFound, find_part

FRONT_ENDS = {"EN": english_ipa}


class OpenVoiceV1Synthesizer(PhonemeSynthesizer):
    def __init__(self, config: ModelConfig, device: str, network, language: str):
        super().__init__(config, device)
        self.network = network.to(device).eval()
        self._config = network.config
        self.sample_rate = self._config.sampling_rate
        self.language_code = language
        self._front_end = FRONT_ENDS[language]
        # ids 0.. of the style table that no style names are unused rows
        self._styles = dict(self._config.speakers)
        self.default_voice = "default" if "default" in self._styles else next(iter(self._styles))

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> OpenVoiceV1Synthesizer:
        from speechmodels.families.openvoice.base_speaker import (
            TRAINING_ONLY,
            BaseSpeaker,
            BaseSpeakerConfig,
        )

        language = (config.language or "EN").upper()
        if language not in FRONT_ENDS:
            raise WeightsNotFound(f"OpenVoice V1 base speaker {language!r}: only the {sorted(FRONT_ENDS)} text "
                                  "front end is written")
        weights, document = find_part(config.model, config.revision, f"checkpoints/base_speakers/{language}",
                                      "checkpoint.pth")
        network = BaseSpeaker(BaseSpeakerConfig.from_json(document))
        state = {key: value for key, value in fold_weight_norm(read_checkpoint(weights, "model")).items()
                 if not key.startswith(TRAINING_ONLY)}
        network.load_state_dict(state, strict=True)
        return cls(config, device or config.device_config.device, network, language)

    def voices(self) -> list[str]:
        return list(self._styles)

    def phonemize(self, text: str) -> list[str]:
        return [self._front_end(sentence) for sentence in split_sentences(text)]

    def tokens(self, phonemes: str) -> np.ndarray:
        return symbol_ids(phonemes, self._config.symbols, self._config.add_blank)

    def synthesize(self, token_ids: np.ndarray, item: SynthesisItem) -> np.ndarray:
        import torch

        generator = torch.Generator().manual_seed(item.seed) if item.seed is not None else None
        samples = self.network.synthesize({"ids": torch.from_numpy(token_ids)[None].to(self.device)},
                                          self._styles[item.voice], length_scale=1.0 / item.speed, generator=generator)
        return samples.float().cpu().numpy()
