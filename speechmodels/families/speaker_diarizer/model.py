"""The clustering step of diarization: speaker embeddings of windows of speech in, labelled
segments out (``speechmodels.diarization`` holds the steps; scikit-learn clusters). And the
last step of a diarized transcription: a transcript and its diarization in, the transcript in
speakers' turns out (a request that brings a ``transcript``).

No weights: ``model`` in the config may be anything (``builtin`` reads best). Options:
``distance_threshold`` (cosine distance at which the speaker tree is cut, 0.35) and
``min_known_similarity`` (how close a cluster must be to a known speaker's reference to take
its name, 0.6).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from speechmodels.base import InputError, SpeechModel, validate_params
from speechmodels.config import ModelConfig
from speechmodels.diarization import (
    Diarization,
    DiarizationParams,
    DiarizedTranscript,
    SpeakerWindows,
    attribute_speakers,
    cluster_windows,
    label_speech,
    name_clusters,
)


class DiarizerOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    distance_threshold: float = Field(default=0.35, gt=0.0, lt=2.0)
    min_known_similarity: float = Field(default=0.6, ge=-1.0, le=1.0)


@dataclass(frozen=True)
class _Item:
    windows: SpeakerWindows
    params: DiarizationParams


@dataclass(frozen=True)
class _Attribution:
    transcript: dict
    diarization: Diarization


class SpeakerDiarizer(SpeechModel):
    def __init__(self, config: ModelConfig, device: str):
        super().__init__(config, device)
        self.options = DiarizerOptions.model_validate(config.options)

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> SpeakerDiarizer:
        return cls(config, "cpu")  # clustering a few hundred vectors: no accelerator to gain from

    def prepare(self, request: Mapping[str, Any]) -> _Item | _Attribution:
        if "transcript" in request:
            if request.get("diarization") is None:
                raise InputError("speaker attribution needs the diarization step's turns", param="diarization")
            return _Attribution(json.loads(request["transcript"]), Diarization.from_bytes(request["diarization"]))
        params = validate_params(DiarizationParams, request)
        raw = request.get("windows")
        if raw is None:
            raise InputError("diarization needs the encoder step's speaker windows", param="windows")
        windows = SpeakerWindows.from_bytes(raw)
        if len(windows.references) != len(params.known_speaker_names):
            raise InputError("each known speaker needs one name and one reference clip",
                             param="known_speaker_names", code="invalid_reference")
        return _Item(windows, params)

    def infer_batch(self, items: Sequence[_Item | _Attribution]) -> list[Diarization | DiarizedTranscript]:
        outputs = []
        for item in items:
            if isinstance(item, _Attribution):
                outputs.append(attribute_speakers(item.transcript, item.diarization))
                continue
            windows = item.windows
            labels = cluster_windows(windows.embeddings, item.params, self.options.distance_threshold)
            names = name_clusters(windows.embeddings, labels, windows.references, item.params.known_speaker_names,
                                  self.options.min_known_similarity)
            outputs.append(Diarization(round(windows.duration, 3), label_speech(windows, labels, names)))
        return outputs

    def input_seconds(self, item: _Item | _Attribution) -> float:
        return item.windows.duration if isinstance(item, _Item) else item.diarization.duration

    def warmup_request(self) -> dict:
        rng = np.random.default_rng(0)
        embeddings = rng.standard_normal((4, 8)).astype(np.float32)
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
        windows = SpeakerWindows(2.0, np.array([[0.0, 2.0]], np.float32),
                                 np.array([[0.0, 1.2], [0.3, 1.5], [0.6, 1.8], [0.8, 2.0]], np.float32), embeddings,
                                 np.zeros((0, 8), np.float32))
        return {"windows": windows.to_bytes()}
