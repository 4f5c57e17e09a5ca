"""Silero VAD (v5/v6 ONNX) run with onnxruntime, batched across requests.

The network is a streaming model: 512-sample windows at 16 kHz, each preceded by the last
64 samples of the previous window, with a (2, batch, 128) recurrent state. A micro-batch is
run as one stream of batched steps: items sorted longest first, so the items still running
at any step are a prefix of the batch and the state is simply sliced. The steps run inside
onnxruntime, one session run per stretch of steps: through Silero's sequence export
(``sequence``) where the weights include it, else the window graph wrapped in a ``scan``.
Both give the probabilities of Silero stepping window by window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechmodels import audio
from speechmodels.base import SpeechModel, validate_params
from speechmodels.config import ModelConfig
from speechmodels.families.silero_vad.scan import scanned_graph
from speechmodels.families.silero_vad.segments import SegmentRules, speech_segments
from speechmodels.families.silero_vad.sequence import batched_sequence_graph
from speechmodels.onnx import open_session
from speechmodels.vad import VADParams, VoiceActivity
from speechmodels.weights import WeightsNotFound, find_file, resolve_weights

SAMPLE_RATE = 16_000
WINDOW = 512
CONTEXT = 64
STATE_SIZE = 128
#: Silero's export of the 16 kHz network over a whole sequence of windows
SEQUENCE_EXPORT = "silero_vad_16k_sequence.onnx"
#: windows per session run (8 s of audio): a run's frames are copied out, 4.7 MB for a batch of 16
MAX_STEPS_PER_RUN = 256


@dataclass(frozen=True)
class _Item:
    samples: np.ndarray
    params: VADParams


class SileroVAD(SpeechModel):
    # one ONNX session serves concurrent runs; a batch steps all its streams window by window
    # until the longest ends, so a 1 s clip must not share a batch with a 10-minute one
    length_lanes = (30.0,)
    # a worker's cores as 1-thread copies (workers.parallelism): its convolutions, one small image
    # per window, split badly (2 cores, 10 s clips, batches of 16, sequence export, bench_peers:
    # two copies 64-83 req/s, one 2-thread copy 43-61 in the same rounds)
    cores_as = "instances"

    def __init__(self, config: ModelConfig, device: str, session):
        super().__init__(config, device)
        self._session = session

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> SileroVAD:
        device = device or config.device_config.device
        root = resolve_weights(config.model, config.revision)
        # package layout: silero_vad/data/silero_vad.onnx; HF layouts keep it under files/ or onnx/
        onnx_file = find_file(root, "silero_vad.onnx", "data/silero_vad.onnx", "files/silero_vad.onnx",
                              "onnx/silero_vad.onnx", pattern="silero_vad.onnx")
        return cls(config, device, open_session(cls._stepping_graph(onnx_file), config, device))

    @staticmethod
    def _stepping_graph(onnx_file: Path) -> bytes:
        """The sequence export beside the window graph (silero-vad >= 6.2 ships both), else the
        window graph in a scan: the export costs less per clip, the more so in small batches (sequence.py)."""
        try:
            sequence_file = find_file(onnx_file.parent, SEQUENCE_EXPORT)
        except WeightsNotFound:
            return scanned_graph(onnx_file, CONTEXT + WINDOW, STATE_SIZE, SAMPLE_RATE)
        return batched_sequence_graph(sequence_file, CONTEXT + WINDOW, STATE_SIZE)

    def prepare(self, request: Mapping[str, Any]) -> _Item:
        params = validate_params(VADParams, request)
        return _Item(audio.decode(request["audio"], SAMPLE_RATE, max_seconds=request.get("max_audio_seconds")), params)

    def input_seconds(self, item: _Item) -> float:
        return len(item.samples) / SAMPLE_RATE

    def warmup_request(self) -> dict:
        return {"audio": audio.synthetic_clip(1.0), "get_timestamps": True}

    def speech_probabilities(self, streams: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per-window speech probability for each 16 kHz stream, all run in one batched pass."""
        n_windows = [max(1, -(-len(samples) // WINDOW)) for samples in streams]
        order = sorted(range(len(streams)), key=lambda index: -n_windows[index])
        sorted_windows = [n_windows[index] for index in order]
        longest = sorted_windows[0]
        # each window is fed with the last CONTEXT samples before it (zeros before the start)
        padded = np.zeros((len(streams), CONTEXT + longest * WINDOW), dtype=np.float32)
        for row, index in enumerate(order):
            padded[row, CONTEXT : CONTEXT + len(streams[index])] = streams[index]
        state = np.zeros((2, len(streams), STATE_SIZE), dtype=np.float32)
        probabilities = np.zeros((len(streams), longest), dtype=np.float32)
        step = 0
        while step < longest:
            # the items still running are a prefix (longest first); one run per stretch of steps in
            # which that prefix stays the same, at most MAX_STEPS_PER_RUN steps
            active = sum(1 for windows in sorted_windows if windows > step)
            end = min(sorted_windows[active - 1], step + MAX_STEPS_PER_RUN)
            span = padded[:active, step * WINDOW : end * WINDOW + CONTEXT]
            frames = np.lib.stride_tricks.sliding_window_view(span, CONTEXT + WINDOW, axis=1)[:, ::WINDOW]
            final_state, output = self._session.run(
                None, {"state0": state[:, :active], "frames": np.ascontiguousarray(frames.transpose(1, 0, 2))})
            state[:, :active] = final_state
            probabilities[:active, step:end] = output[:, :, 0].T
            step = end
        result: list[np.ndarray] = [np.empty(0)] * len(streams)
        for row, index in enumerate(order):
            result[index] = probabilities[row, : n_windows[index]]
        return result

    def infer_batch(self, items: Sequence[_Item]) -> list[VoiceActivity]:
        all_probabilities = self.speech_probabilities([item.samples for item in items])
        return [self._activity(item, probabilities) for item, probabilities in zip(items, all_probabilities)]

    @staticmethod
    def _activity(item: _Item, probabilities: np.ndarray) -> VoiceActivity:
        params = item.params
        rules = SegmentRules(params.threshold, params.min_speech_duration_ms,
                             params.min_silence_duration_ms, params.speech_pad_ms)
        segments = speech_segments(probabilities, len(item.samples), WINDOW, SAMPLE_RATE, rules)
        if not params.get_timestamps:
            return VoiceActivity(bool(segments), None)
        if params.return_seconds:
            # HSE (and Silero) round seconds to one decimal
            return VoiceActivity(bool(segments), [(round(s / SAMPLE_RATE, 1), round(e / SAMPLE_RATE, 1)) for s, e in segments])
        return VoiceActivity(bool(segments), [(int(s), int(e)) for s, e in segments])


