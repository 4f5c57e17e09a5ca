"""``MeloTTSSynthesizer``: MeloTTS, text -> speech in one of its speakers (``data.spk2id``:
EN-US, EN-BR, EN_INDIA, EN-AU, EN-Default on MeloTTS-English). The synthesis step of the
``openvoice_v2`` toolchain, whose V2 tone converter then gives the speech a reference clip's
tone colour; on its own it is a plain multi-speaker TTS model at 44.1 kHz.

Weights: ``config.json`` + ``checkpoint.pth`` of a per-language repo (``myshell-ai/MeloTTS-
English``) or a local folder. Only the English front end is written: other languages refuse
to load rather than mispronounce. See ``network.py`` for what runs without BERT.
"""

from __future__ import annotations

import numpy as np

from speechmodels.config import ModelConfig
from speechmodels.families.melotts.text import (
    LANGUAGE_IDS,
    english_phones,
    token_arrays,
)
from speechmodels.synthesis import PhonemeSynthesizer, SynthesisItem
from speechmodels.torch_state import fold_weight_norm, read_checkpoint
from speechmodels.tts import split_sentences
from speechmodels.weights import WeightsNotFound, find_part

# MeloTTS's own inference scales (its TTS.tts_to_file defaults)
NOISE_SCALE, NOISE_SCALE_W, SDP_RATIO = 0.6, 0.8, 0.2


class MeloTTSSynthesizer(PhonemeSynthesizer):
    def __init__(self, config: ModelConfig, device: str, network, language: str):
        super().__init__(config, device)
        self.network = network.to(device).eval()
        self._config = network.config
        self.sample_rate = self._config.sampling_rate
        self.language_code = language
        self._speakers = dict(self._config.spk2id)
        self.default_voice = next(iter(self._speakers))

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> MeloTTSSynthesizer:
        from speechmodels.families.melotts.network import (
            TRAINING_ONLY,
            MeloConfig,
            MeloNetwork,
        )

        language = (config.language or "EN").upper()
        if language not in LANGUAGE_IDS:
            raise WeightsNotFound(f"MeloTTS {language!r}: only the {sorted(LANGUAGE_IDS)} text front end is written")
        weights, document = find_part(config.model, config.revision, ".", "checkpoint.pth")
        network = MeloNetwork(MeloConfig.from_json(document))
        state = {key: value for key, value in fold_weight_norm(read_checkpoint(weights, "model")).items()
                 if not key.startswith(TRAINING_ONLY)}
        network.load_state_dict(state, strict=True)
        return cls(config, device or config.device_config.device, network, language)

    def voices(self) -> list[str]:
        return list(self._speakers)

    def phonemize(self, text: str) -> list[str]:
        return split_sentences(text)  # the front end reads words: tokens() takes each sentence

    def tokens(self, sentence: str) -> np.ndarray:
        """One sentence as a (3, n) array: phone ids, tone ids, language ids."""
        arrays = token_arrays(english_phones(sentence), self._config.symbols, self.language_code,
                              self._config.add_blank)
        return np.stack([arrays["ids"], arrays["tones"], arrays["languages"]])

    def synthesize(self, token_ids: np.ndarray, item: SynthesisItem) -> np.ndarray:
        import torch

        rows = torch.from_numpy(token_ids).to(self.device)
        generator = torch.Generator().manual_seed(item.seed) if item.seed is not None else None
        samples = self.network.synthesize({"ids": rows[None, 0], "tones": rows[None, 1], "languages": rows[None, 2]},
                                          self._speakers[item.voice], length_scale=1.0 / item.speed,
                                          noise_scale=NOISE_SCALE, noise_scale_w=NOISE_SCALE_W, sdp_ratio=SDP_RATIO,
                                          generator=generator)
        return samples.float().cpu().numpy()
