"""Toolchains: named chains of model families that serve one capability together, declared
as data (HSE's names). Each step runs as its own job step on the queue of the configured model
of that family; the output of one step is the input of the next.

A toolchain exists for a deployment only when every family it needs is configured.
"""

from __future__ import annotations

from dataclasses import dataclass

from speechmodels.registry import (
    AUDIO_CONVERSION,
    MEL_RESTORATION,
    MEL_SYNTHESIS,
    MEL_VOCODING,
    SPEAKER_EMBEDDING,
    SPEECH_SYNTHESIS,
    VOICE_CONVERSION,
)


@dataclass(frozen=True)
class ToolchainStep:
    model_type: str
    capability: str  # what this step does, which says how its output travels to the next
    #: a request field that, when given, stands in for this step's output: the step is skipped
    provided_by: str | None = None


@dataclass(frozen=True)
class Toolchain:
    name: str
    capability: str  # what the chain as a whole does, as routes and listings see it
    steps: tuple[ToolchainStep, ...]


TOOLCHAINS: dict[str, Toolchain] = {
    # voice cloning: a reference clip's embedding (or one the request brings), text -> mel, mel -> 16 kHz
    "harmonyspeech": Toolchain("harmonyspeech", SPEECH_SYNTHESIS, (
        ToolchainStep("HarmonySpeechEncoder", SPEAKER_EMBEDDING, provided_by="input_embedding"),
        ToolchainStep("HarmonySpeechSynthesizer", MEL_SYNTHESIS),
        ToolchainStep("HarmonySpeechVocoder", MEL_VOCODING),
    )),
    # voice conversion: the target clip's tone colour (or one the request brings), then the converter
    "openvoice_v1": Toolchain("openvoice_v1", VOICE_CONVERSION, (
        ToolchainStep("OpenVoiceV1ToneConverterEncoder", SPEAKER_EMBEDDING, provided_by="target_embedding"),
        ToolchainStep("OpenVoiceV1ToneConverter", VOICE_CONVERSION),
    )),
    "openvoice_v2": Toolchain("openvoice_v2", VOICE_CONVERSION, (
        ToolchainStep("OpenVoiceV2ToneConverterEncoder", SPEAKER_EMBEDDING, provided_by="target_embedding"),
        ToolchainStep("OpenVoiceV2ToneConverter", VOICE_CONVERSION),
    )),
    "voicefixer": Toolchain("voicefixer", AUDIO_CONVERSION, (
        ToolchainStep("VoiceFixerRestorer", MEL_RESTORATION),
        ToolchainStep("VoiceFixerVocoder", MEL_VOCODING),
    )),
}
