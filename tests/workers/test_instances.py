"""A worker with ``instances: 2``: two copies of a real model, each with its own batching
thread on the model's one queue, answer concurrent requests each with its own result."""

import base64
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from speechmodels import ModelConfig, load_model
from tests.fleet import Fleet, fixture_audio

MODEL = {"name": "vad-two", "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 2,
         "max_wait_ms": 5, "instances": 2, "threads": 1}
CLIPS = ["jfk.flac", "cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_axb_a0005.wav"]


@pytest.fixture(scope="module")
def two_instance_fleet(private_redis, tmp_path_factory):
    config = tmp_path_factory.mktemp("instances") / "config.yml"
    config.write_text(yaml.safe_dump({"model_configs": [MODEL]}))
    fleet = Fleet(private_redis, config=config)
    fleet.start_worker(MODEL["name"])
    fleet.start_api()
    try:
        fleet.wait_ready()
        yield fleet
    finally:
        fleet.stop()


def test_two_instances_answer_concurrent_requests_each_with_its_own_result(two_instance_fleet):
    model = load_model(ModelConfig.model_validate({**MODEL, "instances": None}))
    expected = {name: model.infer({"audio": fixture_audio(name), "get_timestamps": True}).timestamps
                for name in CLIPS}
    assert len({tuple(map(tuple, stamps)) for stamps in expected.values()}) == len(CLIPS)  # tell them apart

    def ask(index: int) -> tuple[str, list]:
        name = CLIPS[index % len(CLIPS)]
        response = httpx.post(f"{two_instance_fleet.base_url}/v1/audio/vad", timeout=60, json={
            "model": MODEL["name"], "input_audio": base64.b64encode(fixture_audio(name)).decode(),
            "get_timestamps": True, "return_seconds": False})
        assert response.status_code == 200, response.text
        return name, response.json()["timestamps"]

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(ask, range(24)))
    for name, timestamps in answers:
        assert [(stamp["start"], stamp["end"]) for stamp in timestamps] == [tuple(s) for s in expected[name]]
    assert "2 instance(s) of 1 thread(s)" in two_instance_fleet.log_tail(MODEL["name"], lines=400)
