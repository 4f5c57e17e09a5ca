"""KittenTTS (StyleTTS 2 distilled to ONNX, 24 kHz), in the layout of its Hugging Face repos
(``KittenML/kitten-tts-{nano,micro,mini}-0.8``), which HSE loads:

- ``config.json``: ``type`` (ONNX1 or ONNX2), ``model_file`` (the .onnx), ``voices`` (the
  .npz), optional ``voice_aliases`` (friendly name -> npz key) and ``speed_priors`` (npz key
  -> speed factor);
- ``voices.npz``: one float32 array per voice key, (rows, 256) style vectors; an utterance uses
  the row indexed by its text length (capped at the last row);
- the graph: ``input_ids`` [1, T] int64, ``style`` [1, 256] float32, ``speed`` [1] float32 ->
  waveform first; the last 5000 samples are an artefact and dropped.

Ids come from espeak IPA (stress marks kept), split into word and punctuation tokens joined by
spaces, mapped through the symbol table below, wrapped as [0, ..., 10, 0]. The graph takes
one utterance at a time, so a micro-batch is run item by item.
"""

from __future__ import annotations

import json
import re

import numpy as np

from speechmodels.config import ModelConfig
from speechmodels.onnx import open_session
from speechmodels.phonemes import require_espeak
from speechmodels.synthesis import PhonemeSynthesizer, SynthesisItem
from speechmodels.weights import WeightsNotFound, find_file, resolve_weights

SAMPLE_RATE = 24_000
SUPPORTED_TYPES = ("ONNX1", "ONNX2")
TAIL_ARTEFACT_SAMPLES = 5000
# the published voices, under the names the model card (and HSE) use
DEFAULT_VOICE_ALIASES = {
    "Bella": "expr-voice-2-f", "Jasper": "expr-voice-2-m", "Luna": "expr-voice-3-f", "Bruno": "expr-voice-3-m",
    "Rosie": "expr-voice-4-f", "Hugo": "expr-voice-4-m", "Kiki": "expr-voice-5-f", "Leo": "expr-voice-5-m",
}


def symbol_table() -> dict[str, int]:
    """KittenTTS's symbol ids: pad, punctuation, ASCII letters, IPA letters; where a symbol
    repeats, its last position wins (as in the table the models were trained with)."""
    pad = "$"
    punctuation = ';:,.!?¡¿—…"«»"" '
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    ipa = ("ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'̩'ᵻ")
    return {symbol: index for index, symbol in enumerate([pad, *punctuation, *letters, *ipa])}


_SYMBOLS = symbol_table()
_WORDS_AND_MARKS = re.compile(r"\w+|[^\w\s]")


class KittenTTSSynthesizer(PhonemeSynthesizer):
    sample_rate = SAMPLE_RATE
    espeak_voice = "en-us"

    def __init__(self, config: ModelConfig, device: str, session, styles: dict[str, np.ndarray],
                 aliases: dict[str, str], speed_priors: dict[str, float]):
        super().__init__(config, device)
        self._session = session
        self._styles = styles
        self._aliases = {name: key for name, key in aliases.items() if key in styles}
        self._speed_priors = speed_priors
        self.language_code = config.language or "en"
        self.default_voice = "Jasper" if "Jasper" in self._aliases else next(iter(self._aliases or styles))
        self._tail = int(config.options.get("trim_tail_samples", TAIL_ARTEFACT_SAMPLES))

    @classmethod
    def load(cls, config: ModelConfig, device: str | None = None) -> KittenTTSSynthesizer:
        device = device or config.device_config.device
        require_espeak()
        root = resolve_weights(config.model, config.revision)
        config_file = find_file(root, "config.json")
        try:
            card = json.loads(config_file.read_text())
        except (OSError, ValueError) as exc:
            raise WeightsNotFound(f"cannot read the KittenTTS config {config_file}: {exc}") from exc
        if card.get("type") not in SUPPORTED_TYPES:
            raise WeightsNotFound(f"{config_file}: type {card.get('type')!r} is not one of {SUPPORTED_TYPES}")
        folder = config_file.parent
        model_file = find_file(folder, card["model_file"])
        with np.load(find_file(folder, card["voices"])) as voices:
            styles = {key: np.asarray(voices[key], dtype=np.float32).reshape(-1, voices[key].shape[-1])
                      for key in voices.files}
        aliases = card.get("voice_aliases") or DEFAULT_VOICE_ALIASES
        speed_priors = {key: float(value) for key, value in (card.get("speed_priors") or {}).items()}
        return cls(config, device, open_session(model_file, config, device), styles, aliases, speed_priors)

    def voices(self) -> list[str]:
        return [*self._aliases, *self._styles]  # friendly names, and the npz keys themselves

    def language_voices(self) -> dict[str, list[str]]:
        return {self.language_code: list(self._aliases) or list(self._styles)}

    def tokens(self, phonemes: str) -> np.ndarray:
        spaced = " ".join(_WORDS_AND_MARKS.findall(phonemes))
        ids = [_SYMBOLS[symbol] for symbol in spaced if symbol in _SYMBOLS]
        return np.asarray([0, *ids, 10, 0], dtype=np.int64)

    def synthesize(self, token_ids: np.ndarray, item: SynthesisItem) -> np.ndarray:
        key = self._aliases.get(item.voice, item.voice)
        rows = self._styles[key]
        style = rows[min(item.text_chars, rows.shape[0] - 1)][np.newaxis, :]
        speed = np.array([item.speed * self._speed_priors.get(key, 1.0)], dtype=np.float32)
        waveform = self._session.run(None, {"input_ids": token_ids[np.newaxis, :], "style": style, "speed": speed})[0]
        waveform = np.asarray(waveform, dtype=np.float32).reshape(-1)
        return waveform[: -self._tail] if self._tail and waveform.size > self._tail else waveform
