"""How a worker spends its cores: the family's choice, or what config.yml says."""

from speechmodels import ModelConfig
from workers.parallelism import Parallelism, plan, with_threads
from workers.worker_main import pool_threads


def config(model_type: str, **fields) -> ModelConfig:
    return ModelConfig(name="m", model="x", model_type=model_type, **fields)


def test_families_that_measured_faster_as_copies_get_one_single_threaded_copy_per_core():
    assert plan(config("PiperSynthesizer"), 2) == Parallelism(2, 1)
    assert plan(config("SileroVAD"), 1) == Parallelism(1, 1)
    assert plan(config("RNNoiseDenoiser"), 3) == Parallelism(3, 1)
    # at most four copies; the other cores become threads of each
    assert plan(config("HarmonySpeechEncoder"), 16) == Parallelism(4, 4)


def test_other_families_get_one_instance_with_every_core_as_threads():
    assert plan(config("FasterWhisper"), 2) == Parallelism(1, 2)
    assert plan(config("SpeakerDiarizer"), 8) == Parallelism(1, 8)


def test_config_yml_decides_when_it_says():
    assert plan(config("PiperSynthesizer", threads=2), 2) == Parallelism(1, 2)
    assert plan(config("PiperSynthesizer", instances=3), 8) == Parallelism(3, 2)
    assert plan(config("FasterWhisper", instances=2, threads=3), 2) == Parallelism(2, 3)
    assert plan(config("FasterWhisper", options={"cpu_threads": 1}), 8) == Parallelism(1, 1)


def test_one_copy_off_the_cpu():
    assert plan(config("PiperSynthesizer"), 8, device="cuda:0") == Parallelism(1, 8)


def test_each_instance_gets_its_own_task_threads():
    resolved = with_threads(config("PiperSynthesizer", max_batch_size=1), plan(config("PiperSynthesizer"), 2))
    assert (resolved.instances, resolved.threads) == (2, 1)
    assert pool_threads([resolved, config("SileroVAD", max_batch_size=16)]) == 2 * 1 * 2 + 2 * 16
