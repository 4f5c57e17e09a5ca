import pytest

from speechmodels.config import ConfigError, ModelConfig, load_model_configs
from tests.fleet import ROOT

HSE_STYLE = """
model_configs:
  - name: "faster-whisper"
    model: "Systran/faster-whisper-tiny"
    model_type: "FasterWhisper"
    max_batch_size: 10
    dtype: "float32"
    device_config:
      device: "cpu"
    revision: null
    language: en
    voices: [alice]
    some_future_hse_field: 1
"""


def test_reads_hse_config_unchanged(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(HSE_STYLE)
    (config,) = load_model_configs(path)
    assert config.name == "faster-whisper" and config.max_batch_size == 10
    assert config.device_config.device == "cpu" and config.voices == ["alice"]
    assert config.max_wait_ms == 10.0  # fleet default
    assert config.queue == "model.faster-whisper"


def test_default_config_is_valid():
    names = [config.name for config in load_model_configs(ROOT / "config.yml")]
    assert names == ["silero-vad", "harmonyspeech-encoder", "faster-whisper-tiny.en", "faster-whisper-base",
                     "en_US-joe-medium", "rnnoise", "speaker-diarizer"]


@pytest.mark.parametrize("text, message", [
    ("model_configs: []", "no 'model_configs'"),
    ("just: [unclosed", "not valid YAML"),
    ("model_configs:\n  - {name: a, model: x, model_type: SileroVAD, max_batch_size: 0}", "max_batch_size"),
    ("model_configs:\n  - {name: a, model: x, model_type: T}\n  - {name: a, model: y, model_type: T}", "duplicate"),
])
def test_bad_configs_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_model_configs(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_model_configs(tmp_path / "absent.yml")


def test_model_names_must_be_queue_safe():
    with pytest.raises(ValueError):
        ModelConfig(name="bad name/with slash", model="x", model_type="SileroVAD")


def test_threads_and_instances_are_optional_whole_numbers():
    config = ModelConfig(name="a", model="x", model_type="PiperSynthesizer")
    assert config.threads is None and config.instances is None  # the worker chooses
    config = ModelConfig(name="a", model="x", model_type="PiperSynthesizer", threads=2, instances=3)
    assert (config.threads, config.instances) == (2, 3)
    for bad in ({"threads": 0}, {"instances": 0}, {"instances": 65}, {"threads": "many"}):
        with pytest.raises(ValueError):
            ModelConfig(name="a", model="x", model_type="PiperSynthesizer", **bad)


def test_the_old_thread_options_still_set_threads():
    assert ModelConfig(name="a", model="x", model_type="SileroVAD", options={"intra_op_threads": 3}).threads == 3
    assert ModelConfig(name="a", model="x", model_type="FasterWhisper", options={"cpu_threads": 2}).threads == 2
    assert ModelConfig(name="a", model="x", model_type="FasterWhisper", options={"cpu_threads": 0}).threads is None
    explicit = ModelConfig(name="a", model="x", model_type="SileroVAD", threads=1, options={"intra_op_threads": 3})
    assert explicit.threads == 1
    with pytest.raises(ValueError, match="whole number"):
        ModelConfig(name="a", model="x", model_type="SileroVAD", options={"intra_op_threads": "lots"})


def test_a_bad_thread_count_in_a_file_names_the_field(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("model_configs:\n  - {name: a, model: x, model_type: SileroVAD, instances: -1}\n")
    with pytest.raises(ConfigError, match="instances"):
        load_model_configs(path)
