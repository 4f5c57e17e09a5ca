"""The join step of a job split into parts: how the parts' outputs become one output, by
capability (the output is then encoded like any step's, see ``workers.wire``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from speechmodels.registry import SPEECH_SYNTHESIS
from speechmodels.tts import SynthesizedSpeech, join_segments

SENTENCE_PAUSE_MS = 250.0


def _join_speech(parts: list[SynthesizedSpeech]) -> SynthesizedSpeech:
    """Sentences in order, faded at their edges (no clicks), with a pause between each."""
    rate = parts[0].sample_rate
    return SynthesizedSpeech(join_segments([part.samples for part in parts], rate, SENTENCE_PAUSE_MS), rate)


JOINERS: dict[str, Callable[[list[Any]], Any]] = {
    SPEECH_SYNTHESIS: _join_speech,
}
