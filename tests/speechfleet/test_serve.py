"""`speechfleet serve` as a new user runs it: private Redis, a worker per model, the API;
SIGTERM stops everything."""

import base64
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil

from speechfleet.redis_server import free_port
from speechmodels import load_model_configs
from tests.fleet import ROOT, fixture_audio


def test_serve_starts_everything_answers_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["SPEECHFLEET_TORCH_THREADS"] = "1"
    log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([sys.executable, "-m", "speechfleet.cli", "serve", "--config", str(ROOT / "config.yml"),
                              "--port", str(port)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(0.5)
        children = psutil.Process(serve.pid).children(recursive=True)
        names = " ".join(" ".join(child.cmdline()) for child in children)
        configured = len(load_model_configs(ROOT / "config.yml"))
        assert "redis-server" in names and names.count(" worker --models ") == configured and " api " in names
        assert " worker --webhooks" in names

        audio = base64.b64encode(fixture_audio("jfk.flac")).decode()
        response = httpx.post(f"{base}/v1/audio/vad", json={"model": "silero-vad", "input_audio": audio}, timeout=60)
        assert response.status_code == 200 and response.json()["speech_activity"] is True

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(60) == 0
        time.sleep(0.5)
        assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    finally:
        if serve.poll() is None:
            serve.kill()
        log.close()


def test_serve_refuses_a_bad_config(tmp_path):
    bad = tmp_path / "config.yml"
    bad.write_text("model_configs: []\n")
    result = subprocess.run([sys.executable, "-m", "speechfleet.cli", "serve", "--config", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "model_configs" in result.stderr


def test_worker_refuses_an_unknown_model():
    result = subprocess.run([sys.executable, "-m", "speechfleet.cli", "worker", "--models", "nope",
                             "--config", str(ROOT / "config.yml")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "unknown model" in result.stderr


def test_serve_divides_the_cores_among_its_workers_with_overlapping_shares():
    from speechfleet.serve import worker_cores

    assert worker_cores(2, 7) == 2  # the default config on a small machine: every worker may use both
    assert worker_cores(1, 3) == 1
    assert worker_cores(8, 7) == 4  # the floor: a lone busy model still gets four cores
    assert worker_cores(64, 8) == 8  # a big machine: equal shares
    assert worker_cores(64, 1) == 64
    assert worker_cores(16, 0) == 16
