"""A real fleet for tests: a private redis-server, worker processes and the API process,
started the way an operator starts them (the ``speechfleet`` CLI), on loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from speechfleet.redis_server import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "audio"
TEST_CONFIG = Path(__file__).resolve().parent / "config.test.yml"

# bounds and timings small enough for tests to exercise them quickly
TEST_ENV = {
    "SPEECHFLEET_MAX_BODY_BYTES": str(4 * 1024 * 1024),
    "SPEECHFLEET_MAX_AUDIO_SECONDS": "120",
    # no recovery timing is shortened here: visibility timeout, heartbeat, claim recovery and
    # lost-job sweep run at their defaults, as in production
    "SPEECHFLEET_SYNC_WAIT_S": "60",
    "SPEECHFLEET_TORCH_THREADS": "1",
    "SPEECHFLEET_WEBHOOK_SECRET": "whsec_" + "c3BlZWNoZmxlZXQtdGVzdC1zZWNyZXQ=",  # base64 of speechfleet-test-secret
    "SPEECHFLEET_WEBHOOK_ALLOW_PRIVATE": "true",  # the test receiver listens on loopback
    "SPEECHFLEET_WEBHOOK_BACKOFF_S": "0.3",
}


# reference transcripts of the speech fixtures (../shared/fixtures/audio/README.md)
FIXTURE_TRANSCRIPTS = {
    "cmu_arctic_us_aew_a0001.wav": "Author of the danger trail, Philip Steels, etc.",
    "cmu_arctic_us_aew_a0002.wav": "Not at this particular case, Tom, apologized Whittemore.",
    "cmu_arctic_us_aew_a0003.wav": "For the twentieth time that evening the two men shook hands.",
    "cmu_arctic_us_axb_a0004.wav": "Lord, but I'm glad to see you again, Phil.",
    "cmu_arctic_us_axb_a0005.wav": "Will we ever forget it.",
    "cmu_arctic_us_axb_a0006.wav": "God bless 'em, I hope I'll go on seeing them forever.",
    "jfk.flac": "And so my fellow Americans, ask not what your country can do for you, "
                "ask what you can do for your country.",
}


def fixture_audio(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def create_job(client, job_id: str, plan, job_input, age_s: float = 0.0, **fields) -> None:
    """A job as the API records it (record, input, pending entry) but with no Celery message:
    what a lost message leaves behind, or the start of a canvas the test sends itself."""
    import time

    from jobcontract.keys import PENDING_KEY, input_key, job_key
    from jobcontract.record import QUEUED, JobRecord

    created = time.time() - age_s
    record = JobRecord(id=job_id, status=QUEUED, created_at=created, plan=plan, **fields)
    client.hset(job_key(job_id), mapping=record.initial_hash())
    client.set(input_key(job_id), job_input.encode())
    client.zadd(PENDING_KEY, {job_id: created})


def single_step_plan(model: str, capability: str):
    from jobcontract.plan import JobPlan

    return JobPlan.build(model, capability, [(model, capability)])


class Fleet:
    def __init__(self, redis: EmbeddedRedis, config: Path = TEST_CONFIG, extra_env: dict[str, str] | None = None):
        self.redis = redis
        self.config = config
        self.env = {**os.environ, **TEST_ENV, **(extra_env or {}), "REDIS_URL": redis.url,
                    "SPEECHFLEET_CONFIG": str(config)}
        self.workers: dict[str, subprocess.Popen] = {}
        self.api: subprocess.Popen | None = None
        # each process logs to its own file, so a failing test can show what a worker said
        self.log_dir = Path(tempfile.mkdtemp(prefix="speechfleet-test-logs-"))
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _cli(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child process holds it
        try:
            return subprocess.Popen([sys.executable, "-m", "speechfleet.cli", *args], env=self.env, cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def start_worker(self, models: str, name: str | None = None) -> subprocess.Popen:
        """A worker process for ``models`` (comma-separated), known as ``name`` (default: models)."""
        self.workers[name or models] = self._cli(name or models, "worker", "--models", models)
        return self.workers[name or models]

    def start_webhook_worker(self) -> subprocess.Popen:
        self.workers["webhooks"] = self._cli("webhooks", "worker", "--webhooks")
        return self.workers["webhooks"]

    def start_api(self) -> None:
        self.api = self._cli("api", "api", "--port", str(self.port))

    def wait_healthy(self, timeout_s: float = 60) -> None:
        """Until the API process answers (an API alone, against workers that already run)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"API not answering: {self.log_tail('api')}")
            time.sleep(0.2)

    def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            for name, process in self.workers.items():
                if process.poll() is not None:
                    raise RuntimeError(f"worker {name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                last = httpx.get(f"{self.base_url}/ready", timeout=2)
                if last.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"fleet not ready: {last.text if last else 'API not answering'}")

    def wait_ready_for(self, model: str, timeout_s: float = 120) -> None:
        """Until /ready reports a live consumer for ``model`` (other models may have none)."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(f"{self.base_url}/ready", timeout=2).text
                if json.loads(last).get("models", {}).get(model):
                    return
            except (httpx.HTTPError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.3)
        logs = "\n".join(f"--- {name} (exit code {process.poll()}):\n{self.log_tail(name)}"
                         for name, process in [*self.workers.items(), ("api", self.api)] if process)
        raise TimeoutError(f"no live consumer for {model}; last /ready: {last}; logs:\n{logs}")

    def kill_worker(self, models: str) -> None:
        process = self.workers[models]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in [self.api, *self.workers.values()]:
            if process and process.poll() is None:
                process.terminate()
        for process in [self.api, *self.workers.values()]:
            if process:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(self.log_dir, ignore_errors=True)
