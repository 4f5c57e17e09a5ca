"""``HarmonySpeechSynthesizer``: text + a speaker embedding -> mel, the middle step of the
``harmonyspeech`` toolchain (HSE's layout: ``synthesizer/config.json`` +
``synthesizer/synthesizer.pt`` in ``harmony-ai/harmony-speech-v1`` or a local folder)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from speechmodels.base import InputError, TorchModel, validate_params
from speechmodels.config import ModelConfig
from speechmodels.torch_state import read_checkpoint
from speechmodels.weights import find_part


@dataclass
class SynthesizedMel:
    """What travels from the synthesizer to the vocoder: a (n_mels, frames) mel in the
    synthesizer's [-4, 4] scale."""

    mel: np.ndarray

    def to_bytes(self) -> bytes:
        return msgpack.packb({"shape": list(self.mel.shape), "data": np.ascontiguousarray(self.mel, "<f4").tobytes()},
                             use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> SynthesizedMel:
        fields = msgpack.unpackb(data, raw=False)
        return cls(np.frombuffer(fields["data"], dtype="<f4").reshape(fields["shape"]))


class SynthesisParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=4096)
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    pitch: float = Field(default=1.0, ge=0.0, le=4.0, description="scales the predicted pitch")
    energy: float = Field(default=1.0, ge=0.0, le=4.0, description="scales the predicted energy")


@dataclass(frozen=True)
class _Item:
    ids: np.ndarray
    speaker: np.ndarray
    params: SynthesisParams


class HarmonySpeechSynthesizer(TorchModel):

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> HarmonySpeechSynthesizer:
        from speechmodels.families.harmonyspeech_synthesizer.network import (
            ForwardTacotron,
            SynthesizerConfig,
        )

        weights, document = find_part(config.model, config.revision, "synthesizer", "synthesizer.pt")
        network = ForwardTacotron(SynthesizerConfig.from_json(document))
        network.load_state_dict(read_checkpoint(weights, "model_state"), strict=True)
        return cls(config, device or config.device_config.device, network)

    def prepare(self, request: Mapping[str, Any]) -> _Item:
        from speechmodels.families.harmonyspeech_synthesizer.text import text_to_ids

        params = validate_params(SynthesisParams, request)
        dims = self.network.config.speaker_embed_dims
        embedding = request.get("embedding")
        if not isinstance(embedding, bytes) or len(embedding) != 4 * dims:
            raise InputError(f"the speaker embedding must be {dims} float32 values (from a speaker encoder)",
                             param="input_embedding", code="invalid_embedding")
        ids = text_to_ids(params.text)
        if len(ids) < 2:
            raise InputError("the text has nothing to pronounce", param="input", code="empty_text")
        return _Item(np.asarray(ids, dtype=np.int64), np.frombuffer(embedding, dtype="<f4").copy(), params)

    def warmup_request(self) -> dict:
        dims = self.network.config.speaker_embed_dims
        return {"text": "Warming up.", "embedding": np.full(dims, 1 / np.sqrt(dims), dtype="<f4").tobytes()}

    def infer_batch(self, items: Sequence[_Item]) -> list[SynthesizedMel | Exception]:
        import torch

        outputs: list[SynthesizedMel | Exception] = []
        for item in items:  # per item: the length regulator makes every output its own length
            try:
                mel = self.network.generate(torch.from_numpy(item.ids)[None].to(self.device),
                                            torch.from_numpy(item.speaker)[None].to(self.device),
                                            item.params.speed, item.params.pitch, item.params.energy)
                outputs.append(SynthesizedMel(mel.cpu().numpy()))
            except Exception as exc:
                outputs.append(exc)
        return outputs
