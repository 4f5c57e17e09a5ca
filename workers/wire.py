"""Model outputs -> the JSON fields of the capability's response (stored in the job record).

Keyed by capability, not by family: every VAD family answers with the same fields.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from speechmodels.registry import SPEAKER_EMBEDDING, TRANSCRIPTION, VAD


def _voice_activity(output: Any) -> dict:
    timestamps = None
    if output.timestamps is not None:
        timestamps = [{"start": start, "end": end} for start, end in output.timestamps]
    return {"speech_activity": output.speech_activity, "timestamps": timestamps}


def _embedding(output: np.ndarray) -> dict:
    vector = np.asarray(output, dtype="<f4")
    return {"data": base64.b64encode(vector.tobytes()).decode("ascii")}


def _transcription(output: Any) -> dict:
    return dataclasses.asdict(output)  # text, language, duration, task, segments[words]


OUTPUT_ENCODERS: dict[str, Callable[[Any], dict]] = {
    VAD: _voice_activity,
    SPEAKER_EMBEDDING: _embedding,
    TRANSCRIPTION: _transcription,
}


def encode_output(capability: str, output: Any) -> dict:
    return OUTPUT_ENCODERS[capability](output)
