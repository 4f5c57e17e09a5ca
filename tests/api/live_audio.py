"""Speech built from the fixtures for the live-transcription tests and benchmark: clips at
16 kHz, long files joined from them, and a word error rate."""

from __future__ import annotations

import io
import re

import jiwer
import numpy as np
import soundfile

from speechmodels import audio
from tests.fleet import FIXTURE_TRANSCRIPTS, fixture_audio

ARCTIC = sorted(name for name in FIXTURE_TRANSCRIPTS if name.startswith("cmu_arctic"))
RATE = 16_000


def clip(name: str, rate: int = RATE) -> np.ndarray:
    """A fixture as float32 mono at ``rate``."""
    return audio.decode(fixture_audio(name), rate)


def joined(seconds: float, gap_s: float = 0.8) -> tuple[np.ndarray, str]:
    """At least ``seconds`` of the ARCTIC clips and jfk.flac in turn, ``gap_s`` of silence
    between them, at 16 kHz; and the reference transcript of the whole."""
    names = [*ARCTIC, "jfk.flac"]
    pieces, words, total, index = [], [], 0, 0
    silence = np.zeros(int(gap_s * RATE), np.float32)
    while total < seconds * RATE:
        name = names[index % len(names)]
        pieces += [clip(name), silence]
        words.append(FIXTURE_TRANSCRIPTS[name])
        total += len(pieces[-2]) + len(silence)
        index += 1
    return np.concatenate(pieces), " ".join(words)


def flac(samples: np.ndarray, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


# contractions spelt out, as Whisper's own English normaliser does for WER ("I'm" and "I am" are
# the same words said)
CONTRACTIONS = {"'em": " them", "'m": " am", "'re": " are", "'ve": " have", "'ll": " will"}


def normalise(text: str) -> str:
    text = text.lower()
    for short, full in CONTRACTIONS.items():
        text = re.sub(rf"{short}\b", full, text)
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]", " ", text)).strip()


def wer(reference: str, hypothesis: str) -> float:
    return jiwer.wer(normalise(reference), normalise(hypothesis) or "-")


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
