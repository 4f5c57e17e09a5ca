"""``MeloTTSSynthesizer``: MeloTTS, text -> speech in one of its speakers (``data.spk2id``:
EN-US, EN-BR, EN_INDIA, EN-AU, EN-Default on MeloTTS-English). The synthesis step of the
``openvoice_v2`` toolchain, whose V2 tone converter then gives the speech a reference clip's
tone colour; on its own it is a plain multi-speaker TTS model at 44.1 kHz.

Weights: ``config.json`` + ``checkpoint.pth`` of a per-language repo (``myshell-ai/MeloTTS-
English``) or a local folder. Only the English front end is written: other languages refuse
to load rather than mispronounce. See ``network.py`` for what runs without BERT.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechmodels.config import ModelConfig
from speechmodels.families.melotts.text import (
    LANGUAGE_IDS,
    english_phones,
    token_arrays,
)
from speechmodels.families.openvoice.vits_synthesis import VitsSynthesizer
from speechmodels.tts import split_sentences
from speechmodels.weights import find_part


class MeloTTSSynthesizer(VitsSynthesizer):
    languages = frozenset(LANGUAGE_IDS)
    noise_scale, noise_scale_w = 0.6, 0.8  # MeloTTS's TTS.tts_to_file defaults

    @classmethod
    def find_weights(cls, config: ModelConfig, language: str) -> tuple[Path, dict]:
        return find_part(config.model, config.revision, ".", "checkpoint.pth")

    @classmethod
    def build_network(cls, document: dict):
        from speechmodels.families.melotts.network import MeloConfig, MeloNetwork

        return MeloNetwork(MeloConfig.from_json(document))

    @staticmethod
    def speaker_table(network_config) -> dict[str, int]:
        return dict(network_config.spk2id)

    def phonemize(self, text: str) -> list[str]:
        return split_sentences(text)  # the front end reads words: tokens() takes each sentence

    def tokens(self, sentence: str) -> np.ndarray:
        """One sentence as a (3, n) array: phone ids, tone ids, language ids."""
        arrays = token_arrays(english_phones(sentence), self.symbol_table, self.language_code,
                              self.network.config.add_blank)
        return np.stack([arrays["ids"], arrays["tones"], arrays["languages"]])

    def token_tensors(self, token_ids: np.ndarray) -> dict:
        import torch

        rows = torch.from_numpy(token_ids).to(self.device)
        return {"ids": rows[None, 0], "tones": rows[None, 1], "languages": rows[None, 2]}
