"""HarmonySpeech speaker encoder: the GE2E network (LSTM over 40-band mel frames -> 256-d,
ReLU, L2-normalised), averaged over overlapping partial utterances.

Two checkpoint layouts load into the same network:
- HSE's (``harmony-ai/harmony-speech-v1``): ``encoder/config.json`` + ``encoder/encoder.pt``
  in a repo or folder, 768-d in the published V1; clips are rescaled to peak 0.9 first;
- the ``resemblyzer`` package's ``pretrained.pt`` (real weights, the default here).
Both hold ``{"model_state": state_dict}`` with keys ``lstm.*``, ``linear.*`` and the GE2E
loss's ``similarity_weight``/``similarity_bias`` (kept so the state dict loads strictly).

A micro-batch is one forward pass: the partial windows of every item are stacked into one
tensor and the per-item means are taken afterwards.

For diarization (a request with ``speaker_windows`` and the VAD step's ``vad_segments``) an
item is instead the recording's speech cut into short windows, each embedded on its own, plus
the known speakers' reference clips; windows of every request in the micro-batch go through
the same forward pass (one pass per window length).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from speechmodels import audio
from speechmodels.base import InputError, SpeechModel, validate_params
from speechmodels.config import ModelConfig
from speechmodels.diarization import KNOWN_REFERENCE_SECONDS, SpeakerWindows, fit_window, window_starts
from speechmodels.families.harmonyspeech_encoder import preprocess
from speechmodels.vad import read_segments
from speechmodels.weights import WeightsNotFound, resolve_weights


class EncoderConfig(BaseModel):
    """Hyper-parameters; field names follow the encoder's ``config.json``."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    sampling_rate: int = 16_000
    mel_window_length: int = 25  # ms
    mel_window_step: int = 10  # ms
    mel_n_channels: int = 40
    partials_n_frames: int = 160  # 1.6 s
    vad_window_length: int = 30  # ms
    vad_moving_average_width: int = 8
    vad_max_silence_length: int = 6
    audio_norm_target_dBFS: float = -30
    # HSE rescales each clip to this peak before the loudness step; resemblyzer does not
    rescale_peak: float | None = None
    model_hidden_size: int = 256
    model_embedding_size: int = 256
    model_num_layers: int = 3

    @classmethod
    def from_json(cls, document: dict, **defaults) -> EncoderConfig:
        """Flat or sectioned (``{"model": {...}, "data": {...}}``) config.json, both seen in HSE."""
        flat = {key: value for key, value in document.items() if not isinstance(value, dict)}
        for section in document.values():
            if isinstance(section, dict):
                flat.update(section)
        return cls.model_validate({**defaults, **flat})


class SpeakerEncoderNet(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.lstm = nn.LSTM(config.mel_n_channels, config.model_hidden_size, config.model_num_layers, batch_first=True)
        self.linear = nn.Linear(config.model_hidden_size, config.model_embedding_size)
        self.relu = nn.ReLU()
        # GE2E similarity scale and offset: unused at inference, present in every checkpoint
        self.similarity_weight = nn.Parameter(torch.tensor([10.0]))
        self.similarity_bias = nn.Parameter(torch.tensor([-5.0]))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """(batch, frames, n_mels) -> (batch, embedding) L2-normalised partial embeddings."""
        _, (hidden, _) = self.lstm(mels)
        raw = self.relu(self.linear(hidden[-1]))
        return raw / torch.linalg.vector_norm(raw, dim=1, keepdim=True).clamp_min(1e-8)


class EmbedParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    partials_per_second: float = 1.3
    min_coverage: float = 0.75


class WindowParams(BaseModel):
    """How a recording's speech is cut for diarization (``request["speaker_windows"]``)."""

    model_config = ConfigDict(extra="ignore")

    window_s: float = Field(default=1.2, ge=0.4, le=4.0)
    hop_s: float = Field(default=0.3, ge=0.1, le=4.0)


@dataclass(frozen=True)
class _WindowsItem:
    windows: np.ndarray  # (n, window frames, mels)
    times: np.ndarray  # (n, 2) seconds
    regions: np.ndarray  # (r, 2) seconds
    duration: float
    references: list[np.ndarray]  # per known speaker: (partials, frames, mels)


class HarmonySpeechEncoder(SpeechModel):
    # a worker's cores as 1-thread copies (workers.parallelism): the LSTM's steps split poorly
    # across torch threads (2 cores, batches of 16: two copies 88 req/s, one 2-thread copy 63)
    cores_as = "instances"

    def __init__(self, config: ModelConfig, device: str, net: SpeakerEncoderNet, hparams: EncoderConfig):
        super().__init__(config, device)
        self.net = net
        self.hparams = hparams
        self.params = EmbedParams.model_validate(config.options)

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> HarmonySpeechEncoder:
        device = device or config.device_config.device
        root = resolve_weights(config.model, config.revision)
        checkpoint_file, hparams = _locate_checkpoint(root)
        checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=True)
        state = checkpoint.get("model_state", checkpoint)
        net = SpeakerEncoderNet(hparams)
        net.load_state_dict(state, strict=True)
        net.eval().to(device)
        return cls(config, device, net, hparams)

    def prepare(self, request: Mapping[str, Any]) -> np.ndarray | _WindowsItem:
        """Waveform -> stacked partial mel windows, (partials, frames, n_mels); or, for
        diarization, the windows of its speech (``_WindowsItem``)."""
        h = self.hparams
        samples = audio.decode(request["audio"], h.sampling_rate, max_seconds=request.get("max_audio_seconds"))
        if "speaker_windows" in request:
            return self._speech_windows(samples, request)
        return self._partials(samples)

    def _partials(self, samples: np.ndarray, param: str = "input_audio") -> np.ndarray:
        h = self.hparams
        if h.rescale_peak is not None:
            samples = samples * (h.rescale_peak / max(float(np.abs(samples).max()), 1e-8))
        samples = preprocess.normalize_volume(samples, h.audio_norm_target_dBFS)
        samples = preprocess.trim_long_silences(samples, h.sampling_rate, h.vad_window_length,
                                                h.vad_moving_average_width, h.vad_max_silence_length)
        samples_per_frame = h.sampling_rate * h.mel_window_step // 1000
        if len(samples) < samples_per_frame:
            raise InputError("audio is too short to embed (under one 10 ms frame of speech)", param=param)
        windows, padded_length = preprocess.partial_windows(
            len(samples), samples_per_frame, h.partials_n_frames, self.params.partials_per_second,
            h.sampling_rate, self.params.min_coverage)
        samples = np.pad(samples, (0, max(0, padded_length - len(samples))))
        mels = preprocess.mel_frames(samples, h.sampling_rate, h.mel_window_length, h.mel_window_step, h.mel_n_channels)
        return np.stack([mels[window] for window in windows])

    def _speech_windows(self, samples: np.ndarray, request: Mapping[str, Any]) -> _WindowsItem:
        h = self.hparams
        params = validate_params(WindowParams, request["speaker_windows"] or {})
        duration = len(samples) / h.sampling_rate
        regions = [(start, end) for start, end in read_segments(request.get("vad_segments"), duration)
                   if end - start >= 0.2]  # a blip is not a turn
        if not regions:
            raise InputError("no speech was found to tell speakers apart", param="file", code="no_speech")
        frames_per_s = 1000 / h.mel_window_step
        window, hop = int(params.window_s * frames_per_s), max(1, int(params.hop_s * frames_per_s))
        samples = preprocess.normalize_volume(samples, h.audio_norm_target_dBFS)
        mels = preprocess.mel_frames(np.pad(samples, (0, window * h.sampling_rate // int(frames_per_s))),
                                     h.sampling_rate, h.mel_window_length, h.mel_window_step, h.mel_n_channels)
        windows, times = [], []
        for start, end in regions:
            first, last = int(start * frames_per_s), int(np.ceil(end * frames_per_s))
            for offset in window_starts(first, last, window, hop):
                windows.append(fit_window(mels[offset:min(offset + window, last)], window))
                times.append((offset / frames_per_s, min(offset + window, last) / frames_per_s))
        references = [self._reference_partials(index, clip)
                      for index, clip in enumerate(request.get("known_speaker_references") or [])]
        return _WindowsItem(np.stack(windows), np.asarray(times, np.float32), np.asarray(regions, np.float32),
                            duration, references)

    def _reference_partials(self, index: int, clip: bytes) -> np.ndarray:
        param = f"known_speaker_references.{index}"
        h = self.hparams
        samples = audio.decode(clip, h.sampling_rate, param=param, max_seconds=30.0)
        low, high = KNOWN_REFERENCE_SECONDS
        if not low <= len(samples) / h.sampling_rate <= high + 1.0:
            raise InputError(f"{param} must be {low:g} to {high:g} seconds of one speaker's voice", param=param,
                             code="invalid_reference")
        return self._partials(samples, param)

    def warmup_request(self) -> dict:
        return {"audio": audio.synthetic_clip(2.0, self.hparams.sampling_rate)}

    @torch.inference_mode()
    def infer_batch(self, items: Sequence[np.ndarray | _WindowsItem]) -> list[np.ndarray | SpeakerWindows]:
        # every array of frames in the batch, grouped by length: one forward pass per length
        arrays = [[item] if isinstance(item, np.ndarray) else [item.windows, *item.references] for item in items]
        by_length: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for item_index, item_arrays in enumerate(arrays):
            for array_index, array in enumerate(item_arrays):
                by_length[array.shape[1]].append((item_index, array_index))
        embedded: dict[tuple[int, int], np.ndarray] = {}
        for members in by_length.values():
            stacked = np.concatenate([arrays[i][j] for i, j in members])
            rows = self.net(torch.from_numpy(stacked).to(self.device)).cpu().numpy()
            counts = [len(arrays[i][j]) for i, j in members]
            for member, chunk in zip(members, np.split(rows, np.cumsum(counts)[:-1])):
                embedded[member] = chunk
        outputs: list[np.ndarray | SpeakerWindows] = []
        for item_index, item in enumerate(items):
            if isinstance(item, np.ndarray):
                outputs.append(_mean_direction(embedded[item_index, 0]))
                continue
            windows = embedded[item_index, 0]
            windows = windows / np.maximum(np.linalg.norm(windows, axis=1, keepdims=True), 1e-8)
            references = [_mean_direction(embedded[item_index, j + 1]) for j in range(len(item.references))]
            outputs.append(SpeakerWindows(item.duration, item.regions, item.times, windows.astype(np.float32),
                                          np.stack(references) if references else np.zeros((0, windows.shape[1]),
                                                                                            np.float32)))
        return outputs

    def input_seconds(self, item: np.ndarray | _WindowsItem) -> float | None:
        return item.duration if isinstance(item, _WindowsItem) else None


def _mean_direction(partial_embeddings: np.ndarray) -> np.ndarray:
    mean = partial_embeddings.mean(axis=0)
    return (mean / max(np.linalg.norm(mean), 1e-8)).astype(np.float32)


def _locate_checkpoint(root: Path) -> tuple[Path, EncoderConfig]:
    """Find the checkpoint and its hyper-parameters in either supported layout."""
    if root.is_file():
        return root, EncoderConfig()
    for folder in (root / "encoder", root):
        if (folder / "encoder.pt").is_file():
            config_file = folder / "config.json"
            document = json.loads(config_file.read_text()) if config_file.is_file() else {}
            return folder / "encoder.pt", EncoderConfig.from_json(document, rescale_peak=0.9)
    if (root / "pretrained.pt").is_file():
        return root / "pretrained.pt", EncoderConfig()
    raise WeightsNotFound(f"no encoder/encoder.pt or pretrained.pt under {root}")
