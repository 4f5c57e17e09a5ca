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

from pathlib import Path

import numpy as np

from speechmodels.config import ModelConfig
from speechmodels.families.openvoice.text import english_ipa, symbol_ids
from speechmodels.families.openvoice.vits_synthesis import VitsSynthesizer
from speechmodels.tts import split_sentences
from speechmodels.weights import find_part

FRONT_ENDS = {"EN": english_ipa}


class OpenVoiceV1Synthesizer(VitsSynthesizer):
    languages = frozenset(FRONT_ENDS)
    noise_scale, noise_scale_w = 0.667, 0.6  # OpenVoice's BaseSpeakerTTS.tts

    @classmethod
    def find_weights(cls, config: ModelConfig, language: str) -> tuple[Path, dict]:
        return find_part(config.model, config.revision, f"checkpoints/base_speakers/{language}", "checkpoint.pth")

    @classmethod
    def build_network(cls, document: dict):
        from speechmodels.families.openvoice.base_speaker import (
            BaseSpeaker,
            BaseSpeakerConfig,
        )

        return BaseSpeaker(BaseSpeakerConfig.from_json(document))

    @staticmethod
    def speaker_table(network_config) -> dict[str, int]:
        return dict(network_config.speakers)  # rows no style names are unused

    def phonemize(self, text: str) -> list[str]:
        return [FRONT_ENDS[self.language_code](sentence) for sentence in split_sentences(text)]

    def tokens(self, phonemes: str) -> np.ndarray:
        return symbol_ids(phonemes, self.symbol_table, self.network.config.add_blank)

    def token_tensors(self, token_ids: np.ndarray) -> dict:
        import torch

        return {"ids": torch.from_numpy(token_ids)[None].to(self.device)}
