"""Model families keyed by HSE's ``model_type``.

An alias table in the style of Celery's pools and backends: each entry names the class by
import path, so reading the table (the API does, to know which model serves what) imports
no model runtime. Adding a family is one folder under ``families/`` and one entry here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from speechmodels.base import SpeechModel
from speechmodels.config import ModelConfig

# capability names used across the service
VAD = "vad"
SPEAKER_EMBEDDING = "embed"
TRANSCRIPTION = "stt"  # transcription and, on multilingual models, translation
SPEECH_SYNTHESIS = "tts"
AUDIO_CONVERSION = "convert"  # audio in, audio out: denoising, restoration
# steps that only run inside toolchains (an intermediate representation in or out)
MEL_RESTORATION = "restore_mel"  # audio -> restored mel
MEL_VOCODING = "vocode_mel"  # mel -> audio
MEL_SYNTHESIS = "synthesize_mel"  # text + speaker embedding -> mel
VOICE_CONVERSION = "voice_convert"  # source audio + a target voice's embedding -> audio
DIARIZATION = "diarize"  # who spoke when: labelled speech segments
SPEAKER_ATTRIBUTION = "attribute_speakers"  # a transcript + its diarization -> the transcript in speakers' turns
SPEAKER_WINDOWS = "embed_windows"  # audio + its speech segments -> a speaker embedding per short window


@dataclass(frozen=True)
class ModelFamily:
    target: str  # "module:Class"
    capabilities: frozenset[str]

    def load_class(self) -> type[SpeechModel]:
        module_name, _, class_name = self.target.partition(":")
        return getattr(importlib.import_module(module_name), class_name)


MODEL_FAMILIES: dict[str, ModelFamily] = {
    "SileroVAD": ModelFamily("speechmodels.families.silero_vad:SileroVAD", frozenset({VAD})),
    "HarmonySpeechEncoder": ModelFamily(
        "speechmodels.families.harmonyspeech_encoder:HarmonySpeechEncoder", frozenset({SPEAKER_EMBEDDING,
                                                                                     SPEAKER_WINDOWS})
    ),
    "FasterWhisper": ModelFamily(
        "speechmodels.families.faster_whisper:FasterWhisper", frozenset({TRANSCRIPTION, VAD})
    ),
    "PiperSynthesizer": ModelFamily("speechmodels.families.piper:PiperSynthesizer", frozenset({SPEECH_SYNTHESIS})),
    "RNNoiseDenoiser": ModelFamily("speechmodels.families.rnnoise:RNNoiseDenoiser", frozenset({AUDIO_CONVERSION})),
    "HarmonySpeechSynthesizer": ModelFamily("speechmodels.families.harmonyspeech_synthesizer:HarmonySpeechSynthesizer",
                                            frozenset({MEL_SYNTHESIS})),
    "HarmonySpeechVocoder": ModelFamily("speechmodels.families.harmonyspeech_vocoder:HarmonySpeechVocoder",
                                        frozenset({MEL_VOCODING})),
    "OpenVoiceV1ToneConverterEncoder": ModelFamily(
        "speechmodels.families.openvoice:OpenVoiceV1ToneConverterEncoder", frozenset({SPEAKER_EMBEDDING})),
    "OpenVoiceV1ToneConverter": ModelFamily("speechmodels.families.openvoice:OpenVoiceV1ToneConverter",
                                            frozenset({VOICE_CONVERSION})),
    "OpenVoiceV1Synthesizer": ModelFamily("speechmodels.families.openvoice.synthesizer:OpenVoiceV1Synthesizer",
                                          frozenset({SPEECH_SYNTHESIS})),
    "MeloTTSSynthesizer": ModelFamily("speechmodels.families.melotts:MeloTTSSynthesizer",
                                      frozenset({SPEECH_SYNTHESIS})),
    "OpenVoiceV2ToneConverterEncoder": ModelFamily(
        "speechmodels.families.openvoice:OpenVoiceV2ToneConverterEncoder", frozenset({SPEAKER_EMBEDDING})),
    "OpenVoiceV2ToneConverter": ModelFamily("speechmodels.families.openvoice:OpenVoiceV2ToneConverter",
                                            frozenset({VOICE_CONVERSION})),
    "VoiceFixerRestorer": ModelFamily("speechmodels.families.voicefixer:VoiceFixerRestorer",
                                      frozenset({MEL_RESTORATION})),
    "VoiceFixerVocoder": ModelFamily("speechmodels.families.voicefixer:VoiceFixerVocoder", frozenset({MEL_VOCODING})),
    "SpeakerDiarizer": ModelFamily("speechmodels.families.speaker_diarizer:SpeakerDiarizer", frozenset({DIARIZATION, SPEAKER_ATTRIBUTION})),
    "KittenTTSSynthesizer": ModelFamily(
        "speechmodels.families.kittentts:KittenTTSSynthesizer", frozenset({SPEECH_SYNTHESIS})
    ),
}


class UnknownModelType(KeyError):
    def __str__(self) -> str:
        return f"unknown model_type {self.args[0]!r}; known: {sorted(MODEL_FAMILIES)}"


def family_of(model_type: str) -> ModelFamily:
    try:
        return MODEL_FAMILIES[model_type]
    except KeyError:
        raise UnknownModelType(model_type) from None


def capabilities_of(config: ModelConfig) -> frozenset[str]:
    return family_of(config.model_type).capabilities


def load_model(config: ModelConfig, device: str | None = None) -> SpeechModel:
    """Load the family named by ``config.model_type`` with its weights."""
    return family_of(config.model_type).load_class().load(config, device=device)
