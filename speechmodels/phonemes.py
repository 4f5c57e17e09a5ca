"""Text -> IPA phonemes with espeak-ng, for the synthesisers trained on espeak phonemes
(Piper, KittenTTS).

espeak-ng comes compiled into the ``piper-tts`` package with its data files (``espeakbridge``),
so no system library is needed. piper-tts is GPL-3.0+: it is the optional ``tts`` extra, and
a model that needs it says so when it loads without it. espeak-ng keeps one global voice and
state, hence the lock.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from speechmodels.weights import WeightsNotFound

_LOCK = threading.Lock()
_LANGUAGE_SWITCH = re.compile(r"\([^)]+\)")  # espeak's "(fr)...(en)" marks around foreign words


@lru_cache(maxsize=1)
def _bridge():
    try:
        from piper import espeakbridge
        from piper.phonemize_espeak import ESPEAK_DATA_DIR
    except ImportError as exc:
        raise WeightsNotFound("espeak-ng phonemisation needs the optional 'piper-tts' package "
                              "(pip install 'speechfleet[tts]'; GPL-3.0+)") from exc
    espeakbridge.initialize(str(ESPEAK_DATA_DIR))
    return espeakbridge


def require_espeak() -> None:
    """Fail at load time, not on the first request, when espeak-ng is missing."""
    _bridge()


def espeak_sentences(text: str, voice: str) -> list[str]:
    """IPA (with stress marks and the clause punctuation espeak reports) per sentence."""
    bridge = _bridge()
    sentences: list[str] = []
    current = ""
    with _LOCK:
        bridge.set_voice(voice)
        clauses = bridge.get_phonemes(text)
    for phonemes, terminator, end_of_sentence in clauses:
        current += _LANGUAGE_SWITCH.sub("", phonemes) + terminator
        if terminator in (",", ":", ";"):
            current += " "
        if end_of_sentence:
            sentences.append(current)
            current = ""
    if current:
        sentences.append(current)
    return [sentence for sentence in sentences if sentence.strip()]
