"""Realtime input audio to 16 kHz mono float32, slice by slice: 16-bit PCM at 24 kHz or G.711
(mu-law, A-law) at 8 kHz, resampled by one stream per session so slice edges leave no seams.
Plain DSP, no model: the API stays model-free."""

from __future__ import annotations

import base64
import binascii

import numpy as np
import soxr

from api.realtime.protocol import FORMATS, RealtimeError

TARGET_RATE = 16_000


def _mu_law_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return (np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84) / 32768.0).astype(np.float32)


def _a_law_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return (np.where(a & 0x80, magnitude, -magnitude) / 32768.0).astype(np.float32)


G711 = {"audio/pcmu": _mu_law_table(), "audio/pcma": _a_law_table()}


class InputAudio:
    """One session's input decoder (made again when the format changes)."""

    def __init__(self, format_name: str):
        self.format = format_name
        self._resampler = soxr.ResampleStream(FORMATS[format_name], TARGET_RATE, 1, dtype="float32", quality="HQ")

    def decode(self, encoded: object) -> np.ndarray:
        if not isinstance(encoded, str):
            raise RealtimeError("invalid_value", "audio must be a base64 string", "audio")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise RealtimeError("invalid_value", "audio is not valid base64", "audio") from None
        if self.format == "audio/pcm":
            if len(data) % 2:
                raise RealtimeError("invalid_audio", "audio/pcm is 16-bit samples: an odd number of bytes cannot be "
                                    "it (is the session's format right?)", "audio")
            samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        else:
            samples = G711[self.format][np.frombuffer(data, np.uint8)]
        return self._resampler.resample_chunk(samples)
