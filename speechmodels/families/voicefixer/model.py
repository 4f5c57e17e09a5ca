"""VoiceFixer as two families, as HSE serves it: ``VoiceFixerRestorer`` (the analysis module,
``vf.ckpt``: 44.1 kHz audio -> restored mel) and ``VoiceFixerVocoder`` (the synthesis module,
``model.ckpt-1490000_trimed.pt``: mel -> 44.1 kHz audio). The ``voicefixer`` toolchain runs
them as two steps of one job, each on its own model's queue; between them travels a
:class:`RestoredMel`.

Audio is restored in 30 s segments (as VoiceFixer does) and each item runs alone: the GRUs
are bidirectional, so padding a shorter item to a batch would change its result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from speechmodels import audio
from speechmodels.base import InputError, TorchModel
from speechmodels.config import ModelConfig
from speechmodels.torch_state import read_checkpoint
from speechmodels.tts import SynthesizedSpeech
from speechmodels.weights import find_file, resolve_weights

SAMPLE_RATE = 44_100
HOP = 441  # 10 ms at 44.1 kHz: one mel frame, and the vocoder's 7x7x3x3 upsampling
SEGMENT_SECONDS = 30


@dataclass
class RestoredMel:
    """The restorer's output: linear-magnitude mel frames per 30 s segment, and the number
    of samples each segment had (the vocoder trims its output back to them)."""

    segments: list[np.ndarray]  # (frames, n_mels) float32 each
    lengths: list[int]

    def to_bytes(self) -> bytes:
        return msgpack.packb({"segments": [{"shape": list(m.shape), "data": np.ascontiguousarray(m, "<f4").tobytes()}
                                           for m in self.segments], "lengths": self.lengths}, use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> RestoredMel:
        fields = msgpack.unpackb(data, raw=False)
        segments = [np.frombuffer(s["data"], dtype="<f4").reshape(s["shape"]) for s in fields["segments"]]
        return cls(segments, [int(n) for n in fields["lengths"]])


class VoiceFixerRestorer(TorchModel):

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> VoiceFixerRestorer:
        from speechmodels.families.voicefixer.networks import Restorer

        root = resolve_weights(config.model, config.revision)
        state = read_checkpoint(find_file(root, "vf.ckpt", pattern="vf.ckpt"))  # a flat state dict
        hop = int(config.options.get("hop_length", HOP))
        return cls(config, device or config.device_config.device, Restorer.from_state_dict(state, hop))

    def prepare(self, request: Mapping[str, Any]) -> np.ndarray:
        samples = audio.decode(request["audio"], SAMPLE_RATE, max_seconds=request.get("max_audio_seconds"))
        if samples.size < self.network.front.n_fft:
            raise InputError("the audio is too short to restore", param="source_audio", code="audio_too_short")
        return samples

    def input_seconds(self, item: np.ndarray) -> float:
        return item.size / SAMPLE_RATE

    def warmup_request(self) -> dict:
        return {"audio": audio.synthetic_clip(0.5)}

    def infer_batch(self, items: Sequence[np.ndarray]) -> list[RestoredMel | Exception]:
        import torch

        outputs: list[RestoredMel | Exception] = []
        step = SEGMENT_SECONDS * SAMPLE_RATE
        for samples in items:
            try:
                segments, lengths = [], []
                for start in range(0, samples.size, step):
                    segment = samples[start:start + step]
                    if segment.size < self.network.front.n_fft:  # a last sliver: pad it to one window
                        segment = np.pad(segment, (0, self.network.front.n_fft - segment.size))
                    with torch.inference_mode():
                        mel = self.network(torch.from_numpy(np.ascontiguousarray(segment))[None].to(self.device))
                    segments.append(mel[0, 0].cpu().numpy())
                    lengths.append(int(min(step, samples.size - start)))
                outputs.append(RestoredMel(segments, lengths))
            except Exception as exc:  # one item's failure is its own
                outputs.append(exc)
        return outputs


class VoiceFixerVocoder(TorchModel):

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> VoiceFixerVocoder:
        from speechmodels.families.voicefixer.networks import MelVocoder

        root = resolve_weights(config.model, config.revision)
        state = read_checkpoint(find_file(root, "model.ckpt-1490000_trimed.pt", pattern="model.ckpt-*.pt"), "generator")
        return cls(config, device or config.device_config.device, MelVocoder.from_state_dict(state))

    def prepare(self, request: Mapping[str, Any]) -> RestoredMel:
        try:
            return RestoredMel.from_bytes(request["mel"])
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"the input is not a restored mel: {exc}", param="mel") from None

    def input_seconds(self, item: RestoredMel) -> float:
        return sum(item.lengths) / SAMPLE_RATE

    def warmup_request(self) -> dict:
        n_mels = self.network.condnet[0].in_channels
        return {"mel": RestoredMel([np.full((20, n_mels), 1e-3, dtype=np.float32)], [20 * HOP]).to_bytes()}

    def infer_batch(self, items: Sequence[RestoredMel]) -> list[SynthesizedSpeech | Exception]:
        import torch

        from speechmodels.families.voicefixer.networks import vocoder_conditions

        outputs: list[SynthesizedSpeech | Exception] = []
        for item in items:
            try:
                pieces = []
                for mel, length in zip(item.segments, item.lengths):
                    with torch.inference_mode():
                        conditions = vocoder_conditions(torch.from_numpy(np.array(mel))[None]).to(self.device)
                        wave = self.network(conditions)[0, 0].cpu().numpy()
                    pieces.append(_trim_centre(wave, length))
                outputs.append(SynthesizedSpeech(np.concatenate(pieces).astype(np.float32), SAMPLE_RATE))
            except Exception as exc:
                outputs.append(exc)
        return outputs


def _trim_centre(wave: np.ndarray, length: int) -> np.ndarray:
    """The vocoder's output is a few frames longer than the segment (its padding): cut the
    excess evenly from both ends, as VoiceFixer aligns frames."""
    excess = wave.size - length
    if excess <= 0:
        return np.pad(wave, (0, -excess))
    return wave[excess // 2: excess // 2 + length]
