"""`speechfleet serve --data-dir`: the private Redis keeps an append-only file, so restarting
the all-in-one service while jobs are queued loses none of them."""

import os
import signal
import subprocess
import sys
import time

import httpx
import yaml

from speechfleet.redis_server import free_port
from tests.conftest import b64_audio
from tests.fleet import TEST_ENV

ASYNC = {"Prefer": "respond-async"}


def start_serve(tmp_path, config, data_dir, port, log_name):
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(TEST_ENV)
    log = open(tmp_path / log_name, "wb")  # noqa: SIM115 - the child holds it
    process = subprocess.Popen([sys.executable, "-m", "speechfleet.cli", "serve", "--config", str(config),
                                "--port", str(port), "--data-dir", str(data_dir)],
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, (tmp_path / log_name).read_text()[-3000:]
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, (tmp_path / log_name).read_text()[-3000:]
        time.sleep(0.3)


def test_restarting_serve_with_a_data_dir_loses_no_queued_job(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"model_configs": [
        {"name": "silero-vad", "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 4,
         "max_wait_ms": 10}]}))
    data_dir = tmp_path / "redis-data"
    port = free_port()
    noise = b64_audio("noise_exercise_bike.wav")  # a minute each: most are still queued at the stop
    serve, base = start_serve(tmp_path, config, data_dir, port, "serve-1.log")
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            ids = []
            for _ in range(60):
                response = http.post("/v1/audio/vad", headers=ASYNC, json={"model": "silero-vad", "input_audio": noise})
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(90) == 0
        assert list((data_dir).rglob("*.aof")), "no append-only file was written"

        serve, base = start_serve(tmp_path, config, data_dir, port, "serve-2.log")
        with httpx.Client(base_url=base, timeout=60) as http:
            first = [http.get(f"/v1/jobs/{job_id}").json()["status"] for job_id in ids]
            unfinished = sum(status != "succeeded" for status in first)
            deadline = time.monotonic() + 180
            while True:
                final = [http.get(f"/v1/jobs/{job_id}").json() for job_id in ids]
                if all(job["status"] == "succeeded" for job in final):
                    break
                assert all(job["status"] in ("queued", "running", "succeeded") for job in final), final
                assert time.monotonic() < deadline, [job["status"] for job in final]
                time.sleep(0.3)
        print(f"\nserve restarted with {unfinished} of {len(ids)} jobs unfinished; all {len(ids)} succeeded after it")
        assert unfinished > 0, "every job had finished before the restart: nothing was tested"
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(90)
            except subprocess.TimeoutExpired:
                serve.kill()
