"""Text-to-speech as a capability: request parameters, the synthesised result, and the text
and audio handling every synthesiser shares (cutting long text into sentences, joining the
sentences' audio without clicks)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import soundfile
from pydantic import BaseModel, ConfigDict, Field


class SpeechParams(BaseModel):
    """One synthesis item (HSE's and OpenAI's fields, after the API has mapped them)."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=4096)
    voice: str | None = Field(default=None, max_length=128, description="the model's default voice if unset")
    language: str | None = Field(default=None, max_length=32)
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


@dataclass
class SynthesizedSpeech:
    samples: np.ndarray  # mono float32 in [-1, 1]
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate

    # between the steps of a job, audio travels as 32-bit float WAV: lossless, and exactly
    # what an audio family's ``prepare`` decodes, so one step's output is the next one's input
    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        soundfile.write(buffer, np.asarray(self.samples, dtype=np.float32), self.sample_rate, format="WAV",
                        subtype="FLOAT")
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SynthesizedSpeech:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32")
        return cls(samples, rate)


#: the pause between the sentences of a text synthesised in parts
SENTENCE_PAUSE_MS = 250.0

# a sentence ends at . ! ? … (optionally followed by closing quotes/brackets) and whitespace;
# "e.g. this" and "Dr. Smith" split too, which only costs a slightly longer pause
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str, max_chars: int = 300, min_chars: int = 16) -> list[str]:
    """Cut text into synthesis units: sentences, with very short ones merged into their
    neighbour (a unit per "Yes." wastes a model call and adds a pause) and very long ones
    cut at clauses, then at spaces, so no unit exceeds ``max_chars``."""
    units: list[str] = []
    for sentence in _SENTENCE_END.split(" ".join(text.split())):
        sentence = sentence.strip()
        if not sentence:
            continue
        for piece in _cut_long(sentence, max_chars):
            if units and (len(units[-1]) < min_chars or len(piece) < min_chars) \
                    and len(units[-1]) + 1 + len(piece) <= max_chars:
                units[-1] = f"{units[-1]} {piece}"
            else:
                units.append(piece)
    return units


def _cut_long(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        while len(clause) > max_chars:
            cut = clause.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            pieces.append(clause[:cut].strip())
            clause = clause[cut:].strip()
        if pieces and len(pieces[-1]) + 1 + len(clause) <= max_chars:
            pieces[-1] = f"{pieces[-1]} {clause}"
        elif clause:
            pieces.append(clause)
    return pieces


def fade_edges(samples: np.ndarray, sample_rate: int, fade_ms: float = 8.0) -> np.ndarray:
    """Raised-cosine fade in and out, so a segment starts and ends at zero: butting segments
    (or silence) against each other then cannot make a step, which is what a click is."""
    samples = np.array(samples, dtype=np.float32)
    samples -= float(np.mean(samples)) if samples.size else 0.0  # a DC offset would step at the seams too
    n = min(int(sample_rate * fade_ms / 1000), samples.size // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n, dtype=np.float32))).astype(np.float32)
        samples[:n] *= ramp
        samples[-n:] *= ramp[::-1]
    return samples


def sentence_piece(samples: np.ndarray, sample_rate: int, first: bool,
                   pause_ms: float = SENTENCE_PAUSE_MS) -> np.ndarray:
    """One sentence as it sits in a longer text's audio: faded at its edges, after a pause
    unless it comes first. The join step and the stream both build their audio from these,
    so a streamed answer is the joined one, sample for sample."""
    faded = fade_edges(samples, sample_rate)
    if first:
        return faded
    return np.concatenate([np.zeros(int(sample_rate * pause_ms / 1000), dtype=np.float32), faded])


def join_segments(segments: list[np.ndarray], sample_rate: int, pause_ms: float = SENTENCE_PAUSE_MS) -> np.ndarray:
    """Sentences' audio as one signal: each faded at its edges, with a short pause between."""
    pieces = [sentence_piece(segment, sample_rate, index == 0, pause_ms) for index, segment in enumerate(segments)]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def join_sentences(parts: list[SynthesizedSpeech]) -> SynthesizedSpeech:
    """A long text's sentences, synthesised as separate parts, as one recording."""
    rate = parts[0].sample_rate
    return SynthesizedSpeech(join_segments([part.samples for part in parts], rate), rate)
