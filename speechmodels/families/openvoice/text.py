"""OpenVoice V1's English front end (its ``cjke_cleaners2`` on ``[EN]...[EN]`` text): the
normalised text to IPA through the CMU dictionary (``eng_to_ipa``, as upstream), dark l
marked, r as ɹ and affricates as two letters, and a full stop added when the text ends
without punctuation. Characters outside the checkpoint's ``symbols`` are dropped; with
``add_blank`` a blank (id 0) sits between and around the symbols.

Words missing from the dictionary come through spelt, with an asterisk, as they do upstream.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from speechmodels.english import normalize_english

_DARK_L = re.compile(r"l([^aeiouæɑɔəɛɪʊ ]*(?: |$))")
_IPA2 = (("r", "ɹ"), ("ʤ", "dʒ"), ("ʧ", "tʃ"))
_CAMEL = re.compile(r"([a-z])([A-Z])")


def english_ipa(text: str) -> str:
    import eng_to_ipa

    phonemes = " ".join(eng_to_ipa.convert(normalize_english(_CAMEL.sub(r"\1 \2", text))).split())
    phonemes = _DARK_L.sub(lambda match: "ɫ" + match.group(1), phonemes)
    for plain, replacement in _IPA2:
        phonemes = phonemes.replace(plain, replacement)
    phonemes = phonemes.replace("...", "…").rstrip()
    return phonemes if re.search(r"[.,!?\-…~]$", phonemes) else phonemes + "."


def with_blanks(values: list[int]) -> list[int]:
    """VITS' ``add_blank``: a blank (id 0) between and around the values."""
    spaced = [0] * (2 * len(values) + 1)
    spaced[1::2] = values
    return spaced


def symbol_ids(phonemes: str, table: Mapping[str, int], add_blank: bool) -> np.ndarray:
    """IPA as the checkpoint's symbol ids (``table``: symbol -> id)."""
    ids = [table[symbol] for symbol in phonemes if symbol in table]
    return np.asarray(with_blanks(ids) if add_blank else ids, dtype=np.int64)
