"""Piper voices: VITS exported to ONNX, with an ``<voice>.onnx.json`` beside the graph that
holds the phoneme id map, the espeak voice, the sample rate, speakers and inference scales.

Graph inputs: ``input`` [batch, ids] int64, ``input_lengths`` [batch] int64, ``scales`` [3]
float32 (noise, length, noise_w), and ``sid`` [batch] int64 on multi-speaker voices; output
[batch, 1, 1, samples]. Ids of a sentence: BOS, PAD, then each phoneme's ids followed by PAD,
then EOS.

Batching: by default every sentence is its own model call. ``options.batch_mode: padded``
runs a micro-batch's sentences as one padded call instead; on this CPU that was slower
(bench/bench_tts.py prints the ratio), so it is there for accelerators, not the default.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from speechmodels.base import InputError
from speechmodels.config import ModelConfig
from speechmodels.onnx import open_session
from speechmodels.phonemes import require_espeak
from speechmodels.synthesis import INNER_PAUSE_MS, PhonemeSynthesizer, SynthesisItem
from speechmodels.tts import SynthesizedSpeech, join_segments
from speechmodels.weights import WeightsNotFound, find_file, resolve_weights

BOS, EOS, PAD = "^", "$", "_"


class PiperSynthesizer(PhonemeSynthesizer):
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
        self._batch_mode = config.options.get("batch_mode", "sequential")
        if self._batch_mode not in ("sequential", "padded"):
            raise ValueError(f"options.batch_mode must be 'sequential' or 'padded', not {self._batch_mode!r}")

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

    def languages(self) -> dict[str, list[str]]:
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

    def infer_batch(self, items: Sequence[SynthesisItem]) -> list[SynthesizedSpeech | Exception]:
        if self._batch_mode == "sequential":
            return super().infer_batch(items)
        return self._infer_padded(items)

    def _infer_padded(self, items: Sequence[SynthesisItem]) -> list[SynthesizedSpeech | Exception]:
        """All sentences of the micro-batch that share a speed in one padded call each."""
        rows = [(index, ids) for index, item in enumerate(items) for ids in item.token_ids]
        audio: dict[int, list[np.ndarray]] = {index: [] for index in range(len(items))}
        for speed in sorted({item.speed for item in items}):
            group = [(index, ids) for index, ids in rows if items[index].speed == speed]
            lengths = np.array([ids.size for _, ids in group], dtype=np.int64)
            padded = np.zeros((len(group), int(lengths.max())), dtype=np.int64)
            for row, (_, ids) in enumerate(group):
                padded[row, : ids.size] = ids
            feeds = {"input": padded, "input_lengths": lengths, "scales": self._scales(speed),
                     **self._speaker_ids([items[index] for index, _ in group])}
            output = self._session.run(None, feeds)[0].reshape(len(group), -1)
            for row, (index, _) in enumerate(group):
                audio[index].append(_trim_padding(output[row]))
        return [SynthesizedSpeech(join_segments(audio[index], self.sample_rate, INNER_PAUSE_MS), self.sample_rate)
                if audio[index] else InputError("nothing to pronounce") for index in range(len(items))]


def _trim_padding(samples: np.ndarray) -> np.ndarray:
    """A padded row's audio ends in exact zeros where the masked frames were decoded."""
    nonzero = np.flatnonzero(samples)
    return samples[: nonzero[-1] + 1] if nonzero.size else samples[:0]
