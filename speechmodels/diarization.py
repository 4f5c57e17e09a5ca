"""Diarization as a capability: who spoke when, from speaker embeddings over short windows of
the speech (a VAD step finds the speech, a speaker encoder embeds each window, a clustering
step labels them). The pieces every family of the pipeline shares live here: the request's
parameters, the windows an encoder hands on, the answer, and the pure steps between.

Chosen by measurement (``bench/bench_diarization.py``, conversations of 2-4 real speakers built
from the fixtures): windows of 1.2 s every 0.3 s, average-linkage agglomerative clustering on
cosine distance cut at 0.35 (0.3 and 0.4 both did worse on two seeds of 30 conversations), each 0.1 s
of speech labelled by its nearest window.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_KNOWN_SPEAKERS = 4
KNOWN_REFERENCE_SECONDS = (2.0, 10.0)  # a reference clip's speech, at least and at most


class DiarizationParams(BaseModel):
    """What a request may say about its speakers."""

    model_config = ConfigDict(extra="ignore")

    num_speakers: int | None = Field(default=None, ge=1, le=32)
    min_speakers: int | None = Field(default=None, ge=1, le=32)
    max_speakers: int | None = Field(default=None, ge=1, le=32)
    known_speaker_names: list[str] = Field(default_factory=list, max_length=MAX_KNOWN_SPEAKERS)

    @model_validator(mode="after")
    def _consistent(self) -> DiarizationParams:
        low, high = self.min_speakers or 1, self.max_speakers or 32
        if low > high:
            raise ValueError("min_speakers is above max_speakers")
        if self.num_speakers is not None and not low <= self.num_speakers <= high:
            raise ValueError("num_speakers is outside min_speakers..max_speakers")
        if len(set(self.known_speaker_names)) != len(self.known_speaker_names):
            raise ValueError("known_speaker_names must be distinct")
        return self


@dataclass
class SpeakerWindows:
    """What the encoder step hands the clustering step: one embedding per window of speech
    (``times`` in seconds of the recording), the speech regions they came from, and one
    embedding per known speaker's reference clip."""

    duration: float
    regions: np.ndarray  # (r, 2) speech start/end, seconds
    times: np.ndarray  # (n, 2)
    embeddings: np.ndarray  # (n, d), each L2-normalised
    references: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (k, d)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, duration=np.float64(self.duration), regions=self.regions, times=self.times,
                 embeddings=self.embeddings, references=self.references)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SpeakerWindows:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            return cls(float(arrays["duration"]), arrays["regions"], arrays["times"], arrays["embeddings"],
                       arrays["references"])


@dataclass
class Diarization:
    duration: float
    segments: list[tuple[float, float, str]]  # start, end (seconds), speaker label

    def to_bytes(self) -> bytes:
        return json.dumps({"duration": self.duration, "segments": self.segments}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Diarization:
        document = json.loads(data)
        return cls(document["duration"], [tuple(segment) for segment in document["segments"]])

    def speakers(self) -> list[str]:
        return list(dict.fromkeys(speaker for _, _, speaker in self.segments))


def window_starts(start_frame: int, end_frame: int, window: int, hop: int) -> list[int]:
    """Frame offsets of the windows covering one speech region: every ``hop`` frames, plus one
    flush with the region's end; a region shorter than a window gets one (see ``fit_window``)."""
    if end_frame - start_frame <= window:
        return [start_frame]
    starts = list(range(start_frame, end_frame - window + 1, hop))
    if starts[-1] != end_frame - window:
        starts.append(end_frame - window)
    return starts


def fit_window(frames: np.ndarray, window: int) -> np.ndarray:
    """Exactly ``window`` frames: a short stretch of speech is repeated to fill it (never padded
    with the silence or the other voice around it)."""
    if len(frames) >= window:
        return frames[:window]
    frames = frames if len(frames) else np.zeros((1, frames.shape[1]), frames.dtype)
    return np.tile(frames, (-(-window // len(frames)), 1))[:window]


def cluster_windows(embeddings: np.ndarray, params: DiarizationParams, distance_threshold: float) -> np.ndarray:
    """A speaker label per window. The count is estimated by cutting an average-linkage tree
    on cosine distance at ``distance_threshold``, then held within min/max_speakers; a given
    ``num_speakers`` is used as it is."""
    from sklearn.cluster import AgglomerativeClustering

    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=int)
    wanted = params.num_speakers
    low, high = params.min_speakers or 1, params.max_speakers or n
    if wanted is None and n >= 2:
        estimated = AgglomerativeClustering(n_clusters=None, distance_threshold=distance_threshold, metric="cosine",
                                            linkage="average").fit_predict(embeddings)
        count = len(set(estimated))
        if low <= count <= high:
            return estimated
        wanted = min(max(count, low), high)
    wanted = min(wanted or 1, n)
    if wanted <= 1:
        return np.zeros(n, dtype=int)
    return AgglomerativeClustering(n_clusters=wanted, metric="cosine", linkage="average").fit_predict(embeddings)


def name_clusters(embeddings: np.ndarray, labels: np.ndarray, references: np.ndarray, names: list[str],
                  min_similarity: float) -> dict[int, str]:
    """Each cluster's name: the known speaker whose reference its centroid matches best (one
    cluster per known speaker, cosine similarity at least ``min_similarity``), else A, B, ...
    in order of first appearance."""
    from scipy.optimize import linear_sum_assignment

    clusters = list(dict.fromkeys(int(label) for label in labels))
    named: dict[int, str] = {}
    if clusters and len(references):
        centroids = np.stack([embeddings[labels == cluster].mean(axis=0) for cluster in clusters])
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-8)
        similarity = centroids @ references.T
        for row, column in zip(*linear_sum_assignment(-similarity)):
            if similarity[row, column] >= min_similarity:
                named[clusters[row]] = names[column]
    letters = iter(_letters())
    for cluster in clusters:
        if cluster not in named:
            named[cluster] = next(label for label in letters if label not in names)
    return named


def label_speech(windows: SpeakerWindows, labels: np.ndarray, names: dict[int, str],
                 step_s: float = 0.1) -> list[tuple[float, float, str]]:
    """Segments: every ``step_s`` of each speech region takes the label of the window whose
    centre is nearest; runs of one label are merged."""
    centres = windows.times.mean(axis=1) if len(windows.times) else np.zeros(0)
    segments: list[tuple[float, float, str]] = []
    for start, end in windows.regions:
        inside = np.flatnonzero((windows.times[:, 0] >= start - 1e-6) & (windows.times[:, 0] < end)) \
            if len(centres) else np.zeros(0, int)
        if not len(inside):
            continue
        edges = np.append(np.arange(start, end, step_s), end)
        for left, right in zip(edges[:-1], edges[1:]):
            nearest = inside[np.argmin(np.abs(centres[inside] - (left + right) / 2))]
            speaker = names[int(labels[nearest])]
            if segments and segments[-1][2] == speaker and abs(segments[-1][1] - left) < 1e-6:
                segments[-1] = (segments[-1][0], float(right), speaker)
            else:
                segments.append((float(left), float(right), speaker))
    return [(round(start, 2), round(end, 2), speaker) for start, end, speaker in segments]


def _letters():
    """A, B, ..., Z, AA, AB, ..."""
    alphabet = [chr(code) for code in range(ord("A"), ord("Z") + 1)]
    yield from alphabet
    for first in alphabet:
        for second in alphabet:
            yield first + second


@dataclass
class DiarizedTranscript:
    """A transcript cut into turns, each given to the speaker who was talking (OpenAI's
    ``diarized_json``)."""

    duration: float
    text: str
    segments: list[dict]  # {start, end, speaker, text}
    task: str = "transcribe"

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__).encode()


def _speaker_at(diarization: Diarization, start: float, end: float) -> str | None:
    """Who spoke over most of [start, end]; the nearest turn's speaker if no turn overlaps it."""
    if not diarization.segments:
        return None
    overlap: dict[str, float] = {}
    for turn_start, turn_end, speaker in diarization.segments:
        shared = min(end, turn_end) - max(start, turn_start)
        if shared > 0:
            overlap[speaker] = overlap.get(speaker, 0.0) + shared
    if overlap:
        return max(overlap, key=overlap.get)
    middle = (start + end) / 2
    return min(diarization.segments, key=lambda turn: min(abs(turn[0] - middle), abs(turn[1] - middle)))[2]


def attribute_speakers(transcript: dict, diarization: Diarization) -> DiarizedTranscript:
    """Words go to speakers by their times (a segment's own times where it has no words), and
    runs of one speaker's words become one turn."""
    pieces = []
    for segment in transcript.get("segments", []):
        words = segment.get("words") or [{"word": segment["text"], "start": segment["start"], "end": segment["end"]}]
        pieces += [(word["start"], word["end"], word["word"]) for word in words if word["word"].strip()]
    turns: list[dict] = []
    for start, end, text in pieces:
        speaker = _speaker_at(diarization, start, end) or "A"
        if turns and turns[-1]["speaker"] == speaker:
            turns[-1]["end"], turns[-1]["text"] = round(end, 3), turns[-1]["text"] + text
        else:
            turns.append({"start": round(start, 3), "end": round(end, 3), "speaker": speaker, "text": text})
    for turn in turns:
        turn["text"] = turn["text"].strip()
    return DiarizedTranscript(transcript.get("duration", diarization.duration), transcript.get("text", "").strip(),
                              turns, transcript.get("task", "transcribe"))
