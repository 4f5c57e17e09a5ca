"""What the phoneme synthesisers (Piper, KittenTTS, OpenVoice V1's base speakers) share:
request validation, voice and language checks, phonemisation per sentence (espeak unless the
family has its own front end), and running their items one model call per sentence. A family
supplies its token table and its one model call."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechmodels.base import InputError, SpeechModel, validate_params
from speechmodels.phonemes import espeak_sentences
from speechmodels.tts import SpeechParams, SynthesizedSpeech, join_segments

# pause between the sentences espeak finds inside one synthesis unit
INNER_PAUSE_MS = 200.0


@dataclass(frozen=True)
class SynthesisItem:
    token_ids: list[np.ndarray]  # one int64 array per sentence
    voice: str
    speed: float
    text_chars: int
    seed: int | None = None


class PhonemeSynthesizer(SpeechModel):

    #: espeak-ng voice used to phonemise (e.g. "en-us")
    espeak_voice: str
    sample_rate: int
    default_voice: str
    language_code: str  # e.g. "en_US" or "en"

    @abstractmethod
    def voices(self) -> list[str]:
        """Voice names a request may ask for."""

    @abstractmethod
    def tokens(self, phonemes: str) -> np.ndarray:
        """One sentence's IPA as the model's input ids (with its start/end markers)."""

    @abstractmethod
    def synthesize(self, token_ids: np.ndarray, item: SynthesisItem) -> np.ndarray:
        """One model call: ids of one sentence -> float samples."""

    def phonemize(self, text: str) -> list[str]:
        """The text as one IPA string per sentence."""
        return espeak_sentences(text, self.espeak_voice)

    def language_voices(self) -> dict[str, list[str]]:
        return {self.language_code: self.voices()}

    def prepare(self, request: Mapping[str, Any]) -> SynthesisItem:
        params = validate_params(SpeechParams, request)
        voice = params.voice or self.default_voice
        if voice not in self.voices():
            raise InputError(f"voice {voice!r} is not one of this model's voices: {self.voices()}",
                             param="voice", code="unknown_voice")
        if params.language and not _same_language(params.language, self.language_code):
            raise InputError(f"this model speaks {self.language_code}, not {params.language!r}",
                             param="language", code="unsupported_language")
        token_ids = [ids for ids in map(self.tokens, self.phonemize(params.text)) if ids.size > 2]
        if not token_ids:
            raise InputError("the text has nothing to pronounce", param="input", code="empty_text")
        return SynthesisItem(token_ids, voice, params.speed, len(params.text), params.seed)

    def infer_batch(self, items: Sequence[SynthesisItem]) -> list[SynthesizedSpeech | Exception]:
        outputs: list[SynthesizedSpeech | Exception] = []
        for item in items:
            try:
                sentences = [self.synthesize(ids, item) for ids in item.token_ids]
                outputs.append(SynthesizedSpeech(join_segments(sentences, self.sample_rate, INNER_PAUSE_MS),
                                                 self.sample_rate))
            except Exception as exc:  # one item's failure is its own
                outputs.append(exc)
        return outputs

    def audio_seconds(self, item: SynthesisItem, output: SynthesizedSpeech) -> float:
        return output.seconds

    def warmup_request(self) -> dict:
        return {"text": "Warming up.", "voice": self.default_voice}


def _same_language(asked: str, spoken: str) -> bool:
    """'en', 'en-US', 'en_us' all match a model that speaks en_US."""
    asked = asked.replace("-", "_").lower()
    spoken = spoken.replace("-", "_").lower()
    return asked == spoken or asked == spoken.split("_")[0] or spoken == asked.split("_")[0]
