import numpy as np
import pytest

from speechmodels.tts import SpeechParams, fade_edges, join_segments, split_sentences


def test_sentences_are_split_at_terminators_and_short_ones_merged():
    text = "Yes. The first real sentence is here! Is this the second one? \"Quoted,\" she said.  Ok."
    units = split_sentences(text)
    assert units[0] == "Yes. The first real sentence is here!"  # "Yes." alone would waste a model call
    assert units[1] == "Is this the second one?"
    assert units[-1].endswith("Ok.")
    assert " ".join(units) == " ".join(text.split())  # nothing lost, nothing reordered


def test_a_very_long_sentence_is_cut_at_clauses_then_spaces():
    sentence = ", ".join(f"clause number {i} goes on for a while" for i in range(40)) + "."
    units = split_sentences(sentence, max_chars=120)
    assert len(units) > 5 and all(len(unit) <= 120 for unit in units)
    assert " ".join(units) == sentence
    no_spaces = "x" * 700
    assert [len(unit) for unit in split_sentences(no_spaces, max_chars=300)] == [300, 300, 100]


def test_speech_params_bound_speed_and_text():
    assert SpeechParams(text="hi").speed == 1.0
    for bad in ({"text": ""}, {"text": "hi", "speed": 0.2}, {"text": "hi", "speed": 4.5}):
        with pytest.raises(ValueError):
            SpeechParams(**bad)


def test_joined_segments_start_and_end_at_zero_with_pauses_between():
    rate = 16_000
    loud = np.full(rate // 2, 0.8, dtype=np.float32)  # a worst case: full DC at both ends
    joined = join_segments([loud, loud, loud], rate, pause_ms=100)
    assert joined.size == 3 * loud.size + 2 * int(rate * 0.1)
    # a click is a step between neighbouring samples: with fades, the largest step at any
    # seam is tiny against the signal (without them it would be the full 0.8)
    assert np.abs(np.diff(joined)).max() < 0.01
    assert abs(float(joined[0])) < 1e-6 and abs(float(joined[-1])) < 1e-6


def test_fade_keeps_the_middle_of_a_segment():
    rate = 16_000
    tone = (0.5 * np.sin(2 * np.pi * 200 * np.arange(rate) / rate)).astype(np.float32)
    faded = fade_edges(tone, rate)
    middle = slice(rate // 4, 3 * rate // 4)
    assert np.allclose(faded[middle], tone[middle] - tone.mean(), atol=1e-6)
