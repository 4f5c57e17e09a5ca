"""HarmonySpeech V1 reads characters, not phonemes: English text is cleaned (ASCII, lower case,
numbers and abbreviations spelt out) and mapped to the 66 symbols its synthesizer was trained
on, with the end-of-sequence symbol appended."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

PAD, EOS = "_", "~"
SYMBOLS = [PAD, EOS, *"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", *"!'\"(),-.:;? "]
SYMBOL_IDS = {symbol: index for index, symbol in enumerate(SYMBOLS)}

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


def clean(text: str) -> str:
    """English cleaning as the synthesizer was trained: ASCII, lower case, money, decimals,
    ordinals and numbers spelt out, abbreviations expanded, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"([0-9]),([0-9])", r"\1\2", text)
    text = _MONEY.sub(_spell_money, text)
    text = _DECIMAL.sub(lambda m: f"{m.group(1)} point {' '.join(m.group(2))}", text)
    text = _ORDINAL.sub(lambda m: _inflect().number_to_words(_inflect().ordinal(int(m.group(1)))), text)
    text = _NUMBER.sub(lambda m: _spell_number(m.group(0)), text)
    text = _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(1).lower()], text)
    return " ".join(text.split())


def text_to_ids(text: str) -> list[int]:
    """Cleaned text as symbol ids (unknown characters dropped), EOS appended."""
    return [SYMBOL_IDS[c] for c in clean(text) if c in SYMBOL_IDS and c not in (PAD, EOS)] + [SYMBOL_IDS[EOS]]
