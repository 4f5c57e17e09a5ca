"""Toolchains: named chains of model families that serve a capability together, declared as
data (HSE's names). Each step runs as its own job step on the queue of the configured model
of that family; the outputs of the steps before it fill its request.

One toolchain may serve several capabilities with different chains: ``openvoice_v1`` and
``openvoice_v2`` speak text in a cloned voice (VAD -> tone colour encoder -> base speaker or
MeloTTS -> tone converter) and convert a recording's voice (VAD -> encoder -> converter).
A toolchain serves a capability for a deployment only when every family of that chain is
configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from speechmodels.registry import (
    AUDIO_CONVERSION,
    DIARIZATION,
    MEL_RESTORATION,
    MEL_SYNTHESIS,
    MEL_VOCODING,
    SPEAKER_EMBEDDING,
    SPEAKER_WINDOWS,
    SPEECH_SYNTHESIS,
    VAD,
    VOICE_CONVERSION,
)


@dataclass(frozen=True)
class ToolchainStep:
    capability: str  # what this step does, which says how its output travels to the next
    #: the family that runs it; None: any configured model that does ``capability`` (VAD)
    model_type: str | None = None
    #: request fields that, when given, stand in for this step's output: the step is skipped
    skipped_by: tuple[str, ...] = ()
    #: fixed request fields this step needs (a VAD step must return its segments, in seconds)
    request: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Toolchain:
    name: str
    #: the chain of steps for each capability the toolchain serves
    routes: Mapping[str, tuple[ToolchainStep, ...]]


# the reference clip's speech segments, which the tone colour encoder averages over; "task"
# makes a Whisper model (which also transcribes) do VAD
_SPEECH_SEGMENTS = ToolchainStep(VAD, skipped_by=("input_vad_data", "input_embedding", "target_embedding"),
                                 request={"get_timestamps": True, "return_seconds": True, "task": "vad"})


def _openvoice(version: str, synthesizer: str) -> Toolchain:
    encoder = ToolchainStep(SPEAKER_EMBEDDING, f"OpenVoice{version}ToneConverterEncoder",
                            skipped_by=("input_embedding", "target_embedding"))
    converter = ToolchainStep(VOICE_CONVERSION, f"OpenVoice{version}ToneConverter")
    return Toolchain(f"openvoice_{version.lower()}", {
        # a base speaker (V1's own, or MeloTTS for V2) says the text; the converter gives it
        # the reference's tone colour
        SPEECH_SYNTHESIS: (_SPEECH_SEGMENTS, encoder, ToolchainStep(SPEECH_SYNTHESIS, synthesizer), converter),
        VOICE_CONVERSION: (_SPEECH_SEGMENTS, encoder, converter),
    })


TOOLCHAINS: dict[str, Toolchain] = {
    # voice cloning: a reference clip's embedding (or one the request brings), text -> mel, mel -> 16 kHz
    "harmonyspeech": Toolchain("harmonyspeech", {SPEECH_SYNTHESIS: (
        ToolchainStep(SPEAKER_EMBEDDING, "HarmonySpeechEncoder", skipped_by=("input_embedding",)),
        ToolchainStep(MEL_SYNTHESIS, "HarmonySpeechSynthesizer"),
        ToolchainStep(MEL_VOCODING, "HarmonySpeechVocoder"),
    )}),
    "openvoice_v1": _openvoice("V1", "OpenVoiceV1Synthesizer"),
    "openvoice_v2": _openvoice("V2", "MeloTTSSynthesizer"),
    # who spoke when: the recording's speech, a GE2E embedding per short window of it (windows of
    # every request batched on the encoder's queue), then clustering into speakers
    "diarization": Toolchain("diarization", {DIARIZATION: (
        ToolchainStep(VAD, request={"get_timestamps": True, "return_seconds": True, "task": "vad"}),
        ToolchainStep(SPEAKER_WINDOWS, "HarmonySpeechEncoder", request={"speaker_windows": {}}),
        ToolchainStep(DIARIZATION, "SpeakerDiarizer"),
    )}),
    "voicefixer": Toolchain("voicefixer", {AUDIO_CONVERSION: (
        ToolchainStep(MEL_RESTORATION, "VoiceFixerRestorer"),
        ToolchainStep(MEL_VOCODING, "VoiceFixerVocoder"),
    )}),
}
