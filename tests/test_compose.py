"""compose.yaml validates against Compose's schema (``docker-compose config``, which needs no
Docker engine) and runs every configured model."""

import os
import shutil
import subprocess

import pytest
import yaml

from speechmodels import load_model_configs
from tests.fleet import ROOT

COMPOSE = shutil.which("docker-compose")
REQUIRED = {"SPEECHFLEET_API_KEYS": "k1,k2", "FLOWER_BASIC_AUTH": "admin:secret"}

pytestmark = pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed (.ci/run installs it)")


def render(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    return subprocess.run([COMPOSE, "-f", str(ROOT / "compose.yaml"), "config"], capture_output=True, text=True,
                          env={**clean, **env}, cwd=ROOT, timeout=60)


def test_compose_file_is_valid_and_complete():
    result = render(REQUIRED)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"redis", "api", "webhooks", "flower"} <= set(services)
    assert services["api"]["deploy"]["replicas"] >= 2
    # a service serves a group of models (one process, one device): --models a,b
    served = [name for s in services.values() if "--models" in (s.get("command") or [])
              for name in s["command"][s["command"].index("--models") + 1].split(",")]
    assert sorted(served) == sorted(config.name for config in load_model_configs(ROOT / "config.yml"))
    gpu = [name for name, s in services.items() if "cuda:" in " ".join(s.get("command") or [])]
    for name in gpu:  # every GPU worker reserves its device
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"] and device["device_ids"]
    assert all(s["environment"]["REDIS_URL"] == "redis://redis:6379/0" for n, s in services.items()
               if n not in ("redis", "flower"))


def test_compose_refuses_to_start_open():
    result = render({"FLOWER_BASIC_AUTH": "admin:secret"})
    assert result.returncode != 0 and "SPEECHFLEET_API_KEYS" in result.stderr
    result = render({"SPEECHFLEET_API_KEYS": "k1"})
    assert result.returncode != 0 and "FLOWER_BASIC_AUTH" in result.stderr
