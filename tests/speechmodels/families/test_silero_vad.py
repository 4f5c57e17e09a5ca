from pathlib import Path

import numpy as np
import pytest

from speechmodels import InputError, ModelConfig, load_model
from speechmodels.families.silero_vad.segments import SegmentRules, speech_segments
from tests.fleet import fixture_audio


@pytest.fixture(scope="module")
def vad():
    return load_model(ModelConfig(name="vad", model="package:silero_vad", model_type="SileroVAD"))


@pytest.fixture(scope="module")
def window_graph_vad(tmp_path_factory):
    """Weights laid out as Hugging Face repos have them: the window graph alone, no sequence export."""
    import silero_vad

    root = tmp_path_factory.mktemp("silero-window-graph")
    (root / "onnx").mkdir()
    (root / "onnx" / "silero_vad.onnx").symlink_to(Path(silero_vad.__file__).parent / "data" / "silero_vad.onnx")
    return load_model(ModelConfig(name="vad", model=str(root), model_type="SileroVAD"))


def test_runs_silero_sequence_export_where_the_weights_ship_it(vad, window_graph_vad):
    assert vad._session.get_modelmeta().graph_name == "silero_sequence_batched"
    assert window_graph_vad._session.get_modelmeta().graph_name == "silero_scan"


def test_finds_speech_in_jfk_and_none_in_noise(vad):
    speech = vad.infer({"audio": fixture_audio("jfk.flac"), "get_timestamps": True})
    assert speech.speech_activity
    assert 3 <= len(speech.timestamps) <= 6
    assert all(0 <= start < end <= 11 * 16_000 for start, end in speech.timestamps)
    noise = vad.infer({"audio": fixture_audio("noise_exercise_bike.wav"), "get_timestamps": True})
    assert not noise.speech_activity and noise.timestamps == []


def test_matches_the_silero_reference_implementation(vad):
    """Our batched onnxruntime loop and segmenter give Silero's own get_speech_timestamps."""
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    from speechmodels import audio

    threads = torch.get_num_threads()
    reference = load_silero_vad(onnx=True)
    try:
        for name, kwargs in [("jfk.flac", {}), ("cmu_arctic_us_axb_a0006.wav", {"threshold": 0.3, "speech_pad_ms": 100}),
                             ("german_speech_8000.wav", {"min_silence_duration_ms": 300})]:
            samples = audio.decode(fixture_audio(name), 16_000)
            expected = [(s["start"], s["end"]) for s in get_speech_timestamps(torch.from_numpy(samples), reference, **kwargs)]
            ours = vad.infer({"audio": fixture_audio(name), "get_timestamps": True, **kwargs})
            assert ours.timestamps == expected, name
    finally:
        torch.set_num_threads(threads)  # importing silero_vad sets it to 1 process-wide


@pytest.mark.parametrize("graph", ["sequence export", "window graph in a scan"])
def test_batched_runs_give_the_probabilities_of_silero_stepping_window_by_window(graph, vad, window_graph_vad):
    """One session run per stretch of windows, through either graph, against Silero's own wrapper
    fed one 512-sample window at a time; clips of unequal lengths, the longest over one run's steps."""
    import torch
    from silero_vad import load_silero_vad

    from speechmodels import audio
    from speechmodels.families.silero_vad.model import MAX_STEPS_PER_RUN, WINDOW

    threads = torch.get_num_threads()
    reference = load_silero_vad(onnx=True)
    try:
        names = ["cmu_arctic_us_aew_a0001.wav", "jfk.flac", "noise_exercise_bike.wav"]
        streams = [audio.decode(fixture_audio(name), 16_000) for name in names]
        assert max(len(samples) for samples in streams) > MAX_STEPS_PER_RUN * WINDOW
        ours = (vad if graph == "sequence export" else window_graph_vad).speech_probabilities(streams)
        for name, samples, probabilities in zip(names, streams, ours):
            reference.reset_states()
            padded = np.pad(samples, (0, -len(samples) % WINDOW))
            expected = [float(reference(torch.from_numpy(padded[start : start + WINDOW]), 16_000))
                        for start in range(0, len(padded), WINDOW)]
            np.testing.assert_allclose(probabilities, expected, atol=1e-5, err_msg=name)
    finally:
        torch.set_num_threads(threads)


def test_batched_call_equals_one_by_one(vad):
    names = ["jfk.flac", "cmu_arctic_us_aew_a0001.wav", "noise_exercise_bike.wav", "cmu_arctic_us_axb_a0005.wav"]
    items = [vad.prepare({"audio": fixture_audio(name), "get_timestamps": True}) for name in names]
    assert vad.infer_batch(items) == [vad.infer_batch([item])[0] for item in items]
    probabilities = vad.speech_probabilities([item.samples for item in items])
    assert [len(p) for p in probabilities] == [-(-len(item.samples) // 512) for item in items]


def test_seconds_and_no_timestamps(vad):
    seconds = vad.infer({"audio": fixture_audio("jfk.flac"), "get_timestamps": True, "return_seconds": True})
    assert all(isinstance(v, float) and v <= 11.0 for segment in seconds.timestamps for v in segment)
    bare = vad.infer({"audio": fixture_audio("jfk.flac"), "get_timestamps": False})
    assert bare.speech_activity and bare.timestamps is None


def test_bad_params_are_input_errors(vad):
    with pytest.raises(InputError, match="threshold"):
        vad.prepare({"audio": fixture_audio("jfk.flac"), "threshold": 1.5})


def test_segment_rules_on_synthetic_probabilities():
    window, rate = 512, 16_000
    probabilities = np.array([0.0] * 10 + [0.9] * 20 + [0.0] * 4 + [0.9] * 20 + [0.0] * 20)
    rules = SegmentRules(threshold=0.5, min_speech_duration_ms=100, min_silence_duration_ms=100, speech_pad_ms=0)
    # a 4-window (128 ms) gap: silence is measured from its first window, 96 ms < 100 ms -> one segment
    assert speech_segments(probabilities, len(probabilities) * window, window, rate, rules) == [(10 * window, 54 * window)]
    strict = SegmentRules(threshold=0.5, min_speech_duration_ms=100, min_silence_duration_ms=50, speech_pad_ms=0)
    assert len(speech_segments(probabilities, len(probabilities) * window, window, rate, strict)) == 2
    short = np.array([0.0] * 10 + [0.9] * 3 + [0.0] * 20)  # 96 ms of speech < 250 ms
    assert speech_segments(short, len(short) * window, window, rate, SegmentRules()) == []
