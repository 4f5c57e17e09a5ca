"""RNNoise (Xiph's recurrent noise suppressor) through the C library that the ``pyrnnoise``
package ships with the weights compiled in. We load the library ourselves with ctypes and
never import the package (its frame helper converts float frames to int16 without clipping,
so loud input wraps around; and it pulls in plotting libraries we do not need).

The library works on 480-sample frames at 48 kHz, in int16 scale, one state per stream. Audio
is resampled to 48 kHz and back to its own rate (or the rate the request asks for later, at
encoding time). One item per call: the state is per stream, and the C call is cheap.

``options.dry_mix`` (default 0.3) keeps that share of the input under the denoised signal, an
attenuation limit: full suppression leaves artefacts that made Whisper's transcripts worse
than the noisy input at 5 dB SNR (WER 0.365 noisy, 0.432 denoised), while 0.3 of the input
kept the transcripts better than the noisy input at 0 and 5 dB and most of the SNR gain
(bench/bench_denoise.py prints both).
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechmodels import audio
from speechmodels.base import SpeechModel
from speechmodels.config import ModelConfig
from speechmodels.tts import SynthesizedSpeech
from speechmodels.weights import find_file, resolve_weights

RNNOISE_RATE = 48_000
INT16_SCALE = 32768.0
# RNNoise answers two frames late (its analysis window and overlap-add); measured by
# cross-correlation with the clean signal, and taken back out so output lines up with input
DELAY_FRAMES = 2


@dataclass(frozen=True)
class _Item:
    samples: np.ndarray  # at 48 kHz, float in [-1, 1]
    sample_rate: int  # the input's own rate, which the output keeps


class RNNoiseDenoiser(SpeechModel):
    # the C library is single-threaded, and releases the GIL: a worker's cores as copies
    # (workers.parallelism; 2 cores: two copies 10.0 req/s, one 5.4)
    cores_as = "instances"

    def __init__(self, config: ModelConfig, device: str, library: ctypes.CDLL):
        super().__init__(config, device)
        self._lib = library
        self.frame_size = int(library.rnnoise_get_frame_size())
        self.dry_mix = float(config.options.get("dry_mix", 0.3))
        if not 0.0 <= self.dry_mix <= 1.0:
            raise ValueError(f"options.dry_mix must be between 0 and 1, not {self.dry_mix}")

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> RNNoiseDenoiser:
        device = device or config.device_config.device
        if device != "cpu":
            raise ValueError(f"RNNoise runs on the CPU only, not {device!r}")
        root = resolve_weights(config.model, config.revision)
        library = ctypes.CDLL(str(find_file(root, "librnnoise.so", "librnnoise.dylib", pattern="librnnoise*")))
        library.rnnoise_create.argtypes = [ctypes.c_void_p]
        library.rnnoise_create.restype = ctypes.c_void_p
        library.rnnoise_destroy.argtypes = [ctypes.c_void_p]
        library.rnnoise_get_frame_size.restype = ctypes.c_int
        library.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                                  ctypes.POINTER(ctypes.c_float)]
        library.rnnoise_process_frame.restype = ctypes.c_float
        return cls(config, device, library)

    def prepare(self, request: Mapping[str, Any]) -> _Item:
        data = request["audio"]
        rate = audio.probe(data).sample_rate
        return _Item(audio.decode(data, RNNOISE_RATE, max_seconds=request.get("max_audio_seconds")), rate)

    def input_seconds(self, item: _Item) -> float:
        return item.samples.size / RNNOISE_RATE

    def warmup_request(self) -> dict:
        return {"audio": audio.synthetic_clip(0.5)}

    def denoise(self, samples: np.ndarray) -> np.ndarray:
        """One 48 kHz stream through a fresh RNNoise state; float in, float out, clipped."""
        delay = DELAY_FRAMES * self.frame_size
        frames = -(-(samples.size + delay) // self.frame_size)
        scaled = np.zeros(frames * self.frame_size, dtype=np.float32)
        scaled[: samples.size] = samples * INT16_SCALE
        state = self._lib.rnnoise_create(None)
        try:
            for start in range(0, scaled.size, self.frame_size):
                frame = np.ascontiguousarray(scaled[start:start + self.frame_size])
                pointer = frame.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                self._lib.rnnoise_process_frame(state, pointer, pointer)
                scaled[start:start + self.frame_size] = frame
        finally:
            self._lib.rnnoise_destroy(state)
        return np.clip(scaled[delay: delay + samples.size] / INT16_SCALE, -1.0, 1.0)

    def infer_batch(self, items: Sequence[_Item]) -> list[SynthesizedSpeech | Exception]:
        outputs: list[SynthesizedSpeech | Exception] = []
        for item in items:
            try:
                mixed = (1.0 - self.dry_mix) * self.denoise(item.samples) + self.dry_mix * item.samples
                clean = audio.resample(mixed, RNNOISE_RATE, item.sample_rate)
                outputs.append(SynthesizedSpeech(clean, item.sample_rate))
            except Exception as exc:  # one item's failure is its own
                outputs.append(exc)
        return outputs
