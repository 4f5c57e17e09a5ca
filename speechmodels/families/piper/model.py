"""Piper voices: VITS exported to ONNX, with an ``<voice>.onnx.json`` beside the graph that
holds the phoneme id map, the espeak voice, the sample rate, speakers and inference scales.

Graph inputs: ``input`` [batch, ids] int64, ``input_lengths`` [batch] int64, ``scales`` [3]
float32 (noise, length, noise_w), and ``sid`` [batch] int64 on multi-speaker voices; output
[batch, 1, 1, samples]. Ids of a sentence: BOS, PAD, then each phoneme's ids followed by PAD,
then EOS.

Batching: every sentence is its own model call. The graph does take a padded batch, but it
does not say where each row's audio ends (the decoder turns padding into a low hum, not
silence), and on this CPU a padded batch was slower than the same sentences one by one
(bench/bench_tts.py prints the ratio); so the micro-batcher groups requests, and the model
runs them in turn.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speechmodels.config import ModelConfig
from speechmodels.onnx import open_session
from speechmodels.phonemes import require_espeak
from speechmodels.synthesis import PhonemeSynthesizer, SynthesisItem
from speechmodels.weights import WeightsNotFound, find_file, resolve_weights

BOS, EOS, PAD = "^", "$", "_"


class PiperSynthesizer(PhonemeSynthesizer):
    # a worker's cores as 1-thread copies (workers.parallelism): one sentence per call splits
    # poorly across threads (2 cores, 4 clients: two copies 21 audio s/s, one 2-thread copy 19)
    cores_as = "instances"

    def __init__(self, config: ModelConfig, device: str, session, voice_config: dict):
        super().__init__(config, device)
        self._session = session
        self._id_map: dict[str, list[int]] = voice_config["phoneme_id_map"]
        self.sample_rate = int(voice_config["audio"]["sample_rate"])
        self.espeak_voice = voice_config.get("espeak", {}).get("voice", "en-us")
        self.language_code = voice_config.get("language", {}).get("code") or config.language or self.espeak_voice
        inference = voice_config.get("inference", {})
        self._noise_scale = float(inference.get("noise_scale", 0.667))
        self._length_scale = float(inference.get("length_scale", 1.0))
        self._noise_w = float(inference.get("noise_w", 0.8))
        self._speakers: dict[str, int] = voice_config.get("speaker_id_map") or {}
        # a single-speaker voice answers to its dataset name (e.g. "joe") and to "default"
        self._single_voice = voice_config.get("dataset") or config.name
        self.default_voice = next(iter(self._speakers), self._single_voice)

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> PiperSynthesizer:
        device = device or config.device_config.device
        require_espeak()
        root = resolve_weights(config.model, config.revision)
        onnx_file = find_file(root, pattern="*.onnx")
        json_file = Path(f"{onnx_file}.json")
        if not json_file.is_file():
            json_file = find_file(onnx_file.parent, "config.json")
        try:
            voice_config = json.loads(json_file.read_text())
        except (OSError, ValueError) as exc:
            raise WeightsNotFound(f"cannot read the Piper voice config {json_file}: {exc}") from exc
        return cls(config, device, open_session(onnx_file, config, device), voice_config)

    def voices(self) -> list[str]:
        return list(self._speakers) or [self._single_voice, "default"]

    def language_voices(self) -> dict[str, list[str]]:
        return {self.language_code: list(self._speakers) or [self._single_voice]}

    def tokens(self, phonemes: str) -> np.ndarray:
        ids = [*self._id_map[BOS], *self._id_map[PAD]]
        # Piper voices were trained on decomposed codepoints (a stress or length mark apart)
        for phoneme in unicodedata.normalize("NFD", phonemes):
            if phoneme in self._id_map:  # espeak may emit symbols a voice was not trained on
                ids += [*self._id_map[phoneme], *self._id_map[PAD]]
        ids += self._id_map[EOS]
        return np.asarray(ids, dtype=np.int64)

    def _scales(self, speed: float) -> np.ndarray:
        return np.array([self._noise_scale, self._length_scale / speed, self._noise_w], dtype=np.float32)

    def _speaker_ids(self, items: Sequence[SynthesisItem]) -> dict:
        if not self._speakers:
            return {}
        return {"sid": np.array([self._speakers[item.voice] for item in items], dtype=np.int64)}

    def synthesize(self, token_ids: np.ndarray, item: SynthesisItem) -> np.ndarray:
        feeds = {"input": token_ids[np.newaxis, :], "input_lengths": np.array([token_ids.size], dtype=np.int64),
                 "scales": self._scales(item.speed), **self._speaker_ids([item])}
        return self._session.run(None, feeds)[0].reshape(-1)
