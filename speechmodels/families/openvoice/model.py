"""OpenVoice's tone colour converter as two families per version, as HSE serves it, both on the
same ``config.json`` + ``checkpoint.pth``: V2's ``converter/`` (``myshell-ai/OpenVoiceV2``) and
V1's ``checkpoints/converter/`` (``myshell-ai/OpenVoice``; same network, no ``zero_g``):

- ``OpenVoiceV2ToneConverterEncoder``: audio -> tone-colour embedding (its reference encoder);
- ``OpenVoiceV2ToneConverter``: source audio + a target embedding -> the source's words in the
  target's voice. The source's own embedding is taken from the source audio (HSE passes the
  target's as both, which converts from the wrong voice); in the ``openvoice_v1`` TTS
  toolchain the source is the base speaker's speech, so its tone colour is measured on
  the very audio being converted, rather than read from OpenVoice's stored per-style
  ``*_se.pth`` averages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from speechmodels import audio
from speechmodels.base import InputError, TorchModel, validate_params
from speechmodels.config import ModelConfig
from speechmodels.torch_state import fold_weight_norm, read_checkpoint
from speechmodels.tts import SynthesizedSpeech
from speechmodels.weights import find_part

# speech of the reference clip the encoder needs, and the length of the pieces it averages
MIN_SPEECH_S = 0.5
SPEECH_PIECE_S = 10.0


def _load_converter(config: ModelConfig, folder: str):
    from speechmodels.families.openvoice.network import ConverterConfig, ToneConverter

    weights, document = find_part(config.model, config.revision, folder, "checkpoint.pth")
    network = ToneConverter(ConverterConfig.from_json(document))
    network.load_state_dict(fold_weight_norm(read_checkpoint(weights, "model")), strict=True)
    return network


class _OpenVoiceFamily(TorchModel):
    #: where the converter lives in the version's repo
    converter_folder = "converter"

    def __init__(self, config: ModelConfig, device: str, network):
        super().__init__(config, device, network)
        self.sample_rate = network.config.sampling_rate

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None):
        return cls(config, device or config.device_config.device, _load_converter(config, cls.converter_folder))

    def _samples(self, data: bytes, param: str, max_seconds: float | None) -> np.ndarray:
        samples = audio.decode(data, self.sample_rate, param=param, max_seconds=max_seconds)
        if samples.size < self.network.config.filter_length:
            raise InputError(f"{param} is too short", param=param, code="audio_too_short")
        return samples

    def _tensor(self, samples: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(samples))[None].to(self.device)


class OpenVoiceV2ToneConverterEncoder(_OpenVoiceFamily):
    """The clip's tone colour. With ``vad_segments`` (a toolchain's VAD step, or the
    request's ``input_vad_data``), only its speech counts: the segments are joined and cut
    into pieces of at most ``SPEECH_PIECE_S``, and the pieces' embeddings averaged, as
    OpenVoice's own extractor does with its VAD."""

    def prepare(self, request: Mapping[str, Any]) -> list[np.ndarray]:
        samples = self._samples(request["audio"], "input_audio", request.get("max_audio_seconds"))
        segments = request.get("vad_segments")
        if segments is None:
            return [samples]
        speech = np.concatenate([samples[int(start * self.sample_rate):int(end * self.sample_rate)]
                                 for start, end in json.loads(segments)] or [np.zeros(0, np.float32)])
        if speech.size < self.sample_rate * MIN_SPEECH_S:
            raise InputError(f"the reference audio has {speech.size / self.sample_rate:.2f}s of speech; at least "
                             f"{MIN_SPEECH_S:g}s is needed", param="input_audio", code="no_speech")
        step = int(SPEECH_PIECE_S * self.sample_rate)
        pieces = [speech[start:start + step] for start in range(0, speech.size, step)]
        # a short tail piece would weigh as much as a full one: it joins the one before
        if len(pieces) > 1 and pieces[-1].size < step // 2:
            pieces[-2:] = [np.concatenate(pieces[-2:])]
        return pieces

    def input_seconds(self, item: list[np.ndarray]) -> float:
        return sum(piece.size for piece in item) / self.sample_rate

    def warmup_request(self) -> dict:
        return {"audio": audio.synthetic_clip(1.0)}

    def infer_batch(self, items: Sequence[list[np.ndarray]]) -> list[np.ndarray | Exception]:
        import torch

        outputs: list[np.ndarray | Exception] = []
        for pieces in items:  # the GRU's last state: padding would change it
            try:
                embeddings = [self.network.embed(self._tensor(piece)) for piece in pieces]
                outputs.append(torch.stack(embeddings).mean(0).cpu().numpy().astype(np.float32))
            except Exception as exc:
                outputs.append(exc)
        return outputs


class ConversionParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tau: float = Field(default=0.3, ge=0.0, le=1.0, description="sampling temperature of the source's latent")


@dataclass(frozen=True)
class _Conversion:
    samples: np.ndarray
    target: np.ndarray
    tau: float


class OpenVoiceV2ToneConverter(_OpenVoiceFamily):

    def prepare(self, request: Mapping[str, Any]) -> _Conversion:
        params = validate_params(ConversionParams, request)
        source = request.get("source_audio", request.get("audio"))
        if not isinstance(source, bytes):
            raise InputError("source_audio is missing", param="source_audio")
        gin = self.network.config.gin_channels
        target = request.get("embedding")
        if not isinstance(target, bytes) or len(target) != 4 * gin:
            raise InputError(f"the target embedding must be {gin} float32 values (from a tone colour encoder)",
                             param="target_embedding", code="invalid_embedding")
        samples = self._samples(source, "source_audio", request.get("max_audio_seconds"))
        return _Conversion(samples, np.frombuffer(target, dtype="<f4").copy(), params.tau)

    def input_seconds(self, item: _Conversion) -> float:
        return item.samples.size / self.sample_rate

    def warmup_request(self) -> dict:
        gin = self.network.config.gin_channels
        return {"source_audio": audio.synthetic_clip(1.0), "embedding": np.zeros(gin, "<f4").tobytes()}

    def infer_batch(self, items: Sequence[_Conversion]) -> list[SynthesizedSpeech | Exception]:
        import torch

        outputs: list[SynthesizedSpeech | Exception] = []
        for item in items:
            try:
                samples = self._tensor(item.samples)
                source_se = self.network.embed(samples)
                target_se = torch.from_numpy(item.target).to(self.device)
                wave = self.network.convert(samples, source_se, target_se, item.tau).cpu().numpy()
                outputs.append(SynthesizedSpeech(wave.astype(np.float32), self.sample_rate))
            except Exception as exc:
                outputs.append(exc)
        return outputs


class OpenVoiceV1ToneConverterEncoder(OpenVoiceV2ToneConverterEncoder):
    converter_folder = "checkpoints/converter"


class OpenVoiceV1ToneConverter(OpenVoiceV2ToneConverter):
    converter_folder = "checkpoints/converter"
