"""English text normalisation as the keithito/tacotron cleaners do it, which the English models
here were trained behind (HarmonySpeech V1, OpenVoice V1): ASCII, lower case, money, decimals,
ordinals and numbers spelt out, abbreviations expanded, whitespace collapsed."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_ABBREVIATIONS = {
    "mrs": "misess", "mr": "mister", "dr": "doctor", "st": "saint", "co": "company", "jr": "junior", "maj": "major",
    "gen": "general", "drs": "doctors", "rev": "reverend", "lt": "lieutenant", "hon": "honorable",
    "sgt": "sergeant", "capt": "captain", "esq": "esquire", "ltd": "limited", "col": "colonel", "ft": "fort",
}
_ABBREVIATION = re.compile(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", re.IGNORECASE)
_MONEY = re.compile(r"\$([0-9][0-9.,]*)")
_DECIMAL = re.compile(r"([0-9]+)\.([0-9]+)")
_ORDINAL = re.compile(r"\b([0-9]+)(st|nd|rd|th)\b")
_NUMBER = re.compile(r"[0-9]+")


@lru_cache(maxsize=1)
def _inflect():
    import inflect

    return inflect.engine()


def _spell_number(digits: str) -> str:
    n = int(digits)
    words = _inflect()
    if 1000 < n < 3000 and n != 2000 and not 2000 < n < 2010:  # read like a year
        return words.number_to_words(n // 100) + (" hundred" if n % 100 == 0 else " " + (
            "oh " + words.number_to_words(n % 100) if n % 100 < 10 else words.number_to_words(n % 100)))
    return words.number_to_words(n, andword="")


def _spell_money(match: re.Match) -> str:
    dollars, _, cents = match.group(1).replace(",", "").partition(".")
    spoken = f"{dollars or '0'} dollars"
    return f"{spoken}, {int(cents)} cents" if cents and cents.isdigit() and int(cents) else spoken


def normalize_english(text: str) -> str:
    """Text as the English cleaners leave it, before it is read as characters or phonemes."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"([0-9]),([0-9])", r"\1\2", text)
    text = _MONEY.sub(_spell_money, text)
    text = _DECIMAL.sub(lambda m: f"{m.group(1)} point {' '.join(m.group(2))}", text)
    text = _ORDINAL.sub(lambda m: _inflect().number_to_words(_inflect().ordinal(int(m.group(1)))), text)
    text = _NUMBER.sub(lambda m: _spell_number(m.group(0)), text)
    text = _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(1).lower()], text)
    return " ".join(text.split())
