"""The English normalisation the character and IPA front ends share."""

from speechmodels.english import normalize_english


def test_numbers_money_ordinals_and_abbreviations_are_spelt_out():
    assert normalize_english("Dr. Smith paid $3.50 on the 21st, in 1995!") == \
        "doctor smith paid three dollars, fifty cents on the twenty-first, in nineteen ninety-five!"


def test_text_becomes_lower_case_ascii_with_single_spaces():
    assert normalize_english("  Café   NOÏSE\n") == "cafe noise"
