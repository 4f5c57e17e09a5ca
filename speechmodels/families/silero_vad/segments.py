"""Frame speech probabilities -> speech segments (Silero's hysteresis rules, own implementation).

A segment opens when a frame's probability reaches ``threshold`` and closes once it has
stayed below ``threshold - 0.15`` for ``min_silence_duration_ms``; segments shorter than
``min_speech_duration_ms`` are dropped; each is then padded by ``speech_pad_ms`` on both
sides, splitting the gap between neighbours that are closer than twice the pad.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentRules:
    threshold: float = 0.5
    min_speech_duration_ms: int = 250
    min_silence_duration_ms: int = 100
    speech_pad_ms: int = 30

    @property
    def release_threshold(self) -> float:
        return max(self.threshold - 0.15, 0.01)


def speech_segments(
    probabilities: np.ndarray, n_samples: int, window: int, sample_rate: int, rules: SegmentRules
) -> list[tuple[int, int]]:
    """Segments as ``(start, end)`` sample offsets into the audio."""
    min_speech = sample_rate * rules.min_speech_duration_ms / 1000
    min_silence = sample_rate * rules.min_silence_duration_ms / 1000
    pad = int(sample_rate * rules.speech_pad_ms / 1000)

    raw: list[tuple[int, int]] = []
    start: int | None = None
    silence_since: int | None = None
    for index, probability in enumerate(probabilities):
        position = index * window
        if probability >= rules.threshold:
            silence_since = None
            if start is None:
                start = position
            continue
        if start is None or probability >= rules.release_threshold:
            continue
        if silence_since is None:
            silence_since = position
        if position - silence_since >= min_silence:
            if silence_since - start > min_speech:
                raw.append((start, silence_since))
            start, silence_since = None, None
    if start is not None and n_samples - start > min_speech:
        raw.append((start, n_samples))
    return _pad(raw, pad, n_samples)


def _pad(segments: list[tuple[int, int]], pad: int, n_samples: int) -> list[tuple[int, int]]:
    padded = [list(segment) for segment in segments]
    for index, segment in enumerate(padded):
        if index == 0:
            segment[0] = max(0, segment[0] - pad)
        if index + 1 < len(padded):
            following = padded[index + 1]
            gap = following[0] - segment[1]
            if gap < 2 * pad:  # neighbours share the gap instead of overlapping
                segment[1] += gap // 2
                following[0] = max(0, following[0] - gap // 2)
            else:
                segment[1] = min(n_samples, segment[1] + pad)
                following[0] = max(0, following[0] - pad)
        else:
            segment[1] = min(n_samples, segment[1] + pad)
    return [(start, end) for start, end in padded]
