"""Diarization's pieces: the windows, clustering within the speaker bounds, naming known
speakers, labelling speech; and the encoder's windows and the clustering step on real speech
(the bundled GE2E weights, Silero VAD)."""

import json

import numpy as np
import pytest

from speechmodels import ModelConfig, audio, load_model
from speechmodels.base import InputError
from speechmodels.diarization import (
    Diarization,
    DiarizationParams,
    SpeakerWindows,
    cluster_windows,
    fit_window,
    label_speech,
    name_clusters,
    window_starts,
)
from tests.fleet import fixture_audio


def test_windows_cover_a_region_and_end_flush_with_it():
    assert window_starts(0, 100, 120, 30) == [0]  # shorter than a window: one
    assert window_starts(0, 200, 120, 30) == [0, 30, 60, 80]
    short = np.arange(6, dtype=np.float32).reshape(3, 2)
    assert np.array_equal(fit_window(short, 7), np.concatenate([short, short, short[:1]]))


def _two_voices(n_each: int = 6, dims: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2, dims))
    points = np.concatenate([centre + 0.05 * rng.standard_normal((n_each, dims)) for centre in centres])
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_the_speaker_count_is_estimated_or_held_to_what_the_request_says():
    points = _two_voices()
    assert len(set(cluster_windows(points, DiarizationParams(), 0.4))) == 2
    assert len(set(cluster_windows(points, DiarizationParams(num_speakers=3), 0.4))) == 3
    assert len(set(cluster_windows(points, DiarizationParams(max_speakers=1), 0.4))) == 1
    assert len(set(cluster_windows(points, DiarizationParams(min_speakers=4), 0.4))) == 4
    assert cluster_windows(points[:1], DiarizationParams(), 0.4).tolist() == [0]
    with pytest.raises(ValueError):
        DiarizationParams(min_speakers=3, max_speakers=2)


def test_clusters_take_known_names_only_when_close_enough():
    points = _two_voices()
    labels = cluster_windows(points, DiarizationParams(), 0.4)
    second = points[labels == labels[-1]].mean(axis=0)
    named = name_clusters(points, labels, np.stack([second / np.linalg.norm(second)]), ["Ana"], 0.6)
    assert named[int(labels[-1])] == "Ana" and named[int(labels[0])] == "A"
    stranger = -second / np.linalg.norm(second)
    assert set(name_clusters(points, labels, np.stack([stranger]), ["Ana"], 0.6).values()) == {"A", "B"}


def test_speech_is_labelled_by_its_nearest_window_and_runs_merge():
    windows = SpeakerWindows(4.0, np.array([[0.0, 2.0], [2.5, 4.0]], np.float32),
                             np.array([[0.0, 1.0], [1.0, 2.0], [2.5, 3.5], [3.0, 4.0]], np.float32),
                             np.zeros((4, 2), np.float32))
    segments = label_speech(windows, np.array([0, 0, 1, 1]), {0: "A", 1: "B"})
    assert segments == [(0.0, 2.0, "A"), (2.5, 4.0, "B")]
    assert Diarization.from_bytes(Diarization(4.0, segments).to_bytes()).segments == segments
    back = SpeakerWindows.from_bytes(windows.to_bytes())
    assert np.array_equal(back.times, windows.times) and back.duration == 4.0


@pytest.fixture(scope="module")
def pipeline():
    encoder = load_model(ModelConfig(name="e", model="package:resemblyzer", model_type="HarmonySpeechEncoder"))
    vad = load_model(ModelConfig(name="v", model="package:silero_vad", model_type="SileroVAD"))
    diarizer = load_model(ModelConfig(name="d", model="builtin", model_type="SpeakerDiarizer"))
    return encoder, vad, diarizer


def _conversation() -> bytes:
    clips = ["cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_axb_a0004.wav", "cmu_arctic_us_aew_a0002.wav",
             "cmu_arctic_us_axb_a0006.wav"]
    gap = np.zeros(8000, np.float32)
    return audio.encode_wav(np.concatenate([piece for name in clips
                                            for piece in (audio.decode(fixture_audio(name), 16_000), gap)]), 16_000)


def test_two_real_speakers_are_told_apart_and_named(pipeline):
    encoder, vad, diarizer = pipeline
    recording = _conversation()
    speech = vad.infer({"audio": recording, "get_timestamps": True, "return_seconds": True}).timestamps
    windows = encoder.infer({"audio": recording, "vad_segments": json.dumps(speech).encode(), "speaker_windows": {},
                             "known_speaker_references": [fixture_audio("cmu_arctic_us_aew_a0003.wav")]})
    assert windows.embeddings.shape[1] == 256 and windows.references.shape == (1, 256)
    result = diarizer.infer({"windows": windows.to_bytes(), "known_speaker_names": ["aew"]})
    turns = [speaker for _, _, speaker in result.segments]
    # aew, axb, aew, axb; the last turn's VAD regions may come as two segments of one speaker
    assert [speaker for index, speaker in enumerate(turns) if index == 0 or speaker != turns[index - 1]] == \
        ["aew", "A", "aew", "A"]
    assert result.segments[0][0] < 0.5 and abs(result.duration - 15.8) < 0.5


def test_no_speech_and_bad_references_are_input_errors(pipeline):
    encoder, _, _ = pipeline
    noise = fixture_audio("noise_exercise_bike.wav")
    with pytest.raises(InputError, match="no speech"):
        encoder.prepare({"audio": noise, "vad_segments": b"[]", "speaker_windows": {}})
    with pytest.raises(InputError) as short:
        encoder.prepare({"audio": _conversation(), "vad_segments": b"[[0.2, 3.8]]", "speaker_windows": {},
                         "known_speaker_references": [fixture_audio("cmu_arctic_us_axb_a0005.wav")]})  # 1.6 s
    assert short.value.code == "invalid_reference" and short.value.param == "known_speaker_references.0"


def test_words_go_to_whoever_was_talking_and_runs_become_turns():
    from speechmodels.diarization import attribute_speakers

    transcript = {"text": " Hi there. Hello you.", "duration": 4.0, "segments": [
        {"start": 0.0, "end": 4.0, "text": " Hi there. Hello you.", "words": [
            {"word": " Hi", "start": 0.1, "end": 0.4}, {"word": " there.", "start": 0.5, "end": 0.9},
            {"word": " Hello", "start": 2.1, "end": 2.5}, {"word": " you.", "start": 2.6, "end": 3.9}]}]}
    turns = Diarization(4.0, [(0.0, 1.0, "Ana"), (2.0, 3.0, "B")])
    result = attribute_speakers(transcript, turns)
    assert [(t["speaker"], t["text"], t["start"], t["end"]) for t in result.segments] == [
        ("Ana", "Hi there.", 0.1, 0.9), ("B", "Hello you.", 2.1, 3.9)]  # "you." mostly after B's turn: nearest
    assert result.text == "Hi there. Hello you." and result.duration == 4.0
