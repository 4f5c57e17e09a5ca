"""HarmonySpeech V1 reads characters, not phonemes: English text is cleaned (ASCII, lower case,
numbers and abbreviations spelt out) and mapped to the 66 symbols its synthesizer was trained
on, with the end-of-sequence symbol appended."""

from __future__ import annotations

from speechmodels.english import normalize_english

PAD, EOS = "_", "~"
SYMBOLS = [PAD, EOS, *"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", *"!'\"(),-.:;? "]
SYMBOL_IDS = {symbol: index for index, symbol in enumerate(SYMBOLS)}


def text_to_ids(text: str) -> list[int]:
    """Cleaned text as symbol ids (unknown characters dropped), EOS appended."""
    return [SYMBOL_IDS[c] for c in normalize_english(text) if c in SYMBOL_IDS and c not in (PAD, EOS)] + [SYMBOL_IDS[EOS]]
