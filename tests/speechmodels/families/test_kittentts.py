"""KittenTTS in its published layout (config.json + model .onnx + voices.npz), with a small
random graph of the same inputs and outputs: the weights cannot be downloaded here."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from speechmodels import InputError, ModelConfig, load_model
from speechmodels.families.kittentts.model import DEFAULT_VOICE_ALIASES, symbol_table

SAMPLES_PER_TOKEN = 300
STYLE_ROWS = 40
VOICE_KEYS = sorted(DEFAULT_VOICE_ALIASES.values())


def _graph(embedding: np.ndarray, projection: np.ndarray) -> onnx.ModelProto:
    """input_ids [1,T] int64, style [1,256], speed [1] -> waveform [T*300], duration int64:
    waveform = tanh(E[ids] @ W + mean(style)) * 0.3 / speed."""
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["embedded"]),
        helper.make_node("MatMul", ["embedded", "W"], ["projected"]),
        helper.make_node("ReduceMean", ["style"], ["style_mean"], keepdims=1, axes=[1]),
        helper.make_node("Add", ["projected", "style_mean"], ["shifted"]),
        helper.make_node("Tanh", ["shifted"], ["squashed"]),
        helper.make_node("Mul", ["squashed", "gain"], ["scaled"]),
        helper.make_node("Div", ["scaled", "speed"], ["slowed"]),
        helper.make_node("Reshape", ["slowed", "flat"], ["waveform"]),
        helper.make_node("Shape", ["input_ids"], ["duration"]),
    ]
    graph = helper.make_graph(
        nodes, "kitten-test",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "T"]),
         helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 256]),
         helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("duration", TensorProto.INT64, [2])],
        initializer=[numpy_helper.from_array(embedding, "E"), numpy_helper.from_array(projection, "W"),
                     numpy_helper.from_array(np.array(0.3, dtype=np.float32), "gain"),
                     numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kitten-tts-nano-0.8")
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((178, 8)).astype(np.float32)
    projection = (0.5 * rng.standard_normal((8, SAMPLES_PER_TOKEN))).astype(np.float32)
    onnx.save(_graph(embedding, projection), folder / "kitten_tts_nano_v0_8.onnx")
    # row r of voice k is constant k/10 + r/1000, so the row a request used can be read back
    styles = {key: np.tile((k / 10 + np.arange(STYLE_ROWS) / 1000)[:, None], (1, 256)).astype(np.float32)
              for k, key in enumerate(VOICE_KEYS)}
    np.savez(folder / "voices.npz", **styles)
    (folder / "config.json").write_text(json.dumps({
        "name": "Kitten TTS Nano", "version": "0.8", "type": "ONNX2", "model": "kitten-tts-nano-0.8",
        "model_file": "kitten_tts_nano_v0_8.onnx", "voices": "voices.npz",
        "voice_aliases": DEFAULT_VOICE_ALIASES, "speed_priors": {"expr-voice-4-m": 0.9}}))
    return folder, embedding, projection, styles


@pytest.fixture(scope="module")
def kitten(checkpoint):
    folder = checkpoint[0]
    return load_model(ModelConfig(name="kitten", model=str(folder), model_type="KittenTTSSynthesizer",
                                  options={"trim_tail_samples": 5000}))


def test_lists_the_published_voices(kitten):
    assert kitten.sample_rate == 24_000
    assert kitten.language_voices() == {"en": ["Bella", "Jasper", "Luna", "Bruno", "Rosie", "Hugo", "Kiki", "Leo"]}
    assert kitten.default_voice == "Jasper"
    assert "expr-voice-2-m" in kitten.voices()  # the npz keys work too


def test_tokens_are_words_and_marks_wrapped_in_pad_and_end():
    ids = symbol_table()
    # "həlˈoʊ." -> "həlˈoʊ ." (a space before the mark) -> [0, ..., 10, 0]
    expected = [0, *(ids[c] for c in "həlˈoʊ"), ids[" "], ids["."], 10, 0]
    from speechmodels.families.kittentts.model import KittenTTSSynthesizer

    assert KittenTTSSynthesizer.tokens(None, "həlˈoʊ.").tolist() == expected
    assert (ids["$"], ids[";"], ids[" "], ids["A"], ids["a"], ids["ˈ"], ids["ᵻ"]) == (0, 1, 16, 17, 43, 156, 177)


def _expected_waveform(checkpoint, token_ids, voice_key, row, speed):
    _, embedding, projection, styles = checkpoint
    shift = styles[voice_key][row].mean()
    wave = np.tanh(embedding[token_ids] @ projection + shift) * 0.3 / speed
    return wave.reshape(-1)[:-5000]


def test_runs_the_graph_with_the_style_row_of_the_text_length_and_the_speed_prior(kitten, checkpoint):
    text = "Hello there, how are you?"
    item = kitten.prepare({"text": text, "voice": "Hugo", "speed": 1.25})
    (token_ids,) = item.token_ids
    audio = kitten.synthesize(token_ids, item)
    # Hugo is expr-voice-4-m, whose prior slows it by 0.9; its style row is len(text)
    expected = _expected_waveform(checkpoint, token_ids, "expr-voice-4-m", len(text), 1.25 * 0.9)
    assert audio.shape == expected.shape == (token_ids.size * SAMPLES_PER_TOKEN - 5000,)
    assert np.allclose(audio, expected, atol=1e-5)


def test_a_long_text_uses_the_last_style_row(kitten, checkpoint):
    text = "This sentence is longer than the forty style rows of the test voices."
    item = kitten.prepare({"text": text, "voice": "Bella"})
    audio = kitten.synthesize(item.token_ids[0], item)
    expected = _expected_waveform(checkpoint, item.token_ids[0], "expr-voice-2-f", STYLE_ROWS - 1, 1.0)
    assert np.allclose(audio, expected, atol=1e-5)


def test_batches_items_and_fails_bad_ones_alone(kitten):
    outputs = kitten.infer_batch([kitten.prepare({"text": "One. Two sentences here."}),
                                  kitten.prepare({"text": "Three.", "voice": "Kiki"})])
    assert [output.sample_rate for output in outputs] == [24_000, 24_000]
    assert outputs[0].seconds > outputs[1].seconds > 0
    with pytest.raises(InputError):
        kitten.prepare({"text": "Hi.", "voice": "Nobody"})


def test_refuses_an_unknown_checkpoint_type(checkpoint, tmp_path):
    folder = checkpoint[0]
    card = json.loads((folder / "config.json").read_text())
    for name in ("kitten_tts_nano_v0_8.onnx", "voices.npz"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({**card, "type": "PT"}))
    with pytest.raises(FileNotFoundError, match="type"):
        load_model(ModelConfig(name="kitten", model=str(tmp_path), model_type="KittenTTSSynthesizer"))
