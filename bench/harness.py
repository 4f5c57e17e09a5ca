"""What every benchmark here shares: a fleet started with ``speechfleet serve`` on a
throw-away config, core pinning, a closed-loop load generator, CPU accounting and results."""

from __future__ import annotations

import os

# as in a worker process (speechfleet worker sets the same): numpy's BLAS stays single-threaded
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import mimetypes  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "audio"
sys.path.insert(0, str(ROOT))

from speechfleet.memory import as_launched, restart_with_huge_pages, with_huge_pages  # noqa: E402
from speechfleet.redis_server import free_port  # noqa: E402

if TYPE_CHECKING:
    import aiohttp  # the bench extra; imported where the load generator starts

# as a worker does (speechfleet.memory): the in-process sides run on huge pages too, so a ratio
# compares the fleet with them, not two allocator settings. What this process starts (serve, its
# workers, an API) starts as a user starts it: workers restart onto huge pages themselves, the API does not
restart_with_huge_pages()
_launched = as_launched(os.environ)
os.environ.clear()
os.environ.update(_launched)


def peer_environment() -> dict[str, str]:
    """For a peer's server started here: huge pages, as the in-process sides have them."""
    return with_huge_pages(os.environ) or dict(os.environ)


@dataclass(frozen=True)
class LoadResponse:
    """A finished response of the load generator's client (the fields the benchmarks read)."""

    status_code: int
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


class LoadClient:
    """The load generator's HTTP client: aiohttp (the bench extra), for the fewest CPU cycles
    per request on the cores it shares with the server it measures (posting a 10 s clip's
    570 KB JSON body cost httpx 3.0 ms of CPU, this client 0.7 ms), with the keyword arguments
    of httpx's ``post`` that the benchmarks use."""

    def __init__(self, session: aiohttp.ClientSession):
        self._session = session
        self._form = _aiohttp().FormData

    async def post(self, path: str, *, json: Any = None, content: bytes | None = None,
                   data: dict[str, str] | None = None, files: dict[str, tuple] | None = None,
                   headers: dict[str, str] | None = None) -> LoadResponse:
        body: Any = content
        if files is not None:  # multipart, as httpx builds it from data= and files=
            form = self._form()
            for name, value in (data or {}).items():
                form.add_field(name, str(value))
            for name, (filename, payload, *content_type) in files.items():
                guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
                form.add_field(name, payload, filename=filename, content_type=content_type[0] if content_type else guessed)
            body = form
        elif data is not None:
            body = self._form(data)
        async with self._session.post(path, json=json, data=body, headers=headers) as response:
            return LoadResponse(response.status, await response.read())


Send = Callable[[LoadClient, int], Awaitable[LoadResponse]]


def _aiohttp():
    try:
        import aiohttp
    except ImportError:
        raise SystemExit("the load generator needs the bench extra: "
                         ".venv/bin/pip install -c constraints.txt -e '.[bench]' (make bench installs it)") from None
    return aiohttp


@dataclass
class Result:
    label: str
    seconds: float
    latencies: list[float]
    errors: int
    cpu_ms: dict[str, float] | None = None  # CPU milliseconds per request, by process

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def line(self) -> str:
        p50 = statistics.median(self.latencies) * 1000
        p95 = np.percentile(self.latencies, 95) * 1000
        line = (f"  {self.label:<34} {self.rps:8.2f} req/s   p50 {p50:7.1f} ms   p95 {p95:7.1f} ms"
                f"   errors {self.errors}")
        if self.cpu_ms:
            line += "\n      CPU per request: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in self.cpu_ms.items())
        return line


@dataclass(frozen=True)
class Cores:
    model: set[int]  # where workers and in-process runs compute
    rest: set[int]  # API, Redis, load generator
    model_threads: int

    @classmethod
    def choose(cls, shared: bool) -> Cores:
        every = set(range(os.cpu_count() or 1))
        if shared or len(every) < 2:
            return cls(every, every, len(every))
        last = max(every)
        return cls({last}, every - {last}, 1)

    def describe(self) -> str:
        return (f"model compute on cores {sorted(self.model)} with {self.model_threads} thread(s); API, Redis and "
                f"load generator on cores {sorted(self.rest)}")


class CpuMeter:
    """CPU time used per request by each process of the fleet (and by this load generator)."""

    def __init__(self, serve_pid: int | None):
        self.processes = {"this process": psutil.Process()}
        if serve_pid is not None:
            for child in psutil.Process(serve_pid).children(recursive=True):
                command = " ".join(child.cmdline())
                if "redis-server" in command:
                    self.processes["redis"] = child
                elif " worker " in command and "--models " in command:
                    self.processes[f"worker {command.split('--models ')[1].split()[0]}"] = child
                elif " worker " in command:
                    self.processes["webhooks worker"] = child
                elif " api " in command:
                    self.processes["api"] = child
        self._start: dict[str, float] = {}

    def pin(self, cores: Cores) -> None:
        for name, process in self.processes.items():
            chosen = cores.model if name.startswith("worker") else cores.rest
            # every thread: an affinity set on a process applies to its main thread only, and a worker's
            # batching and pool threads exist by now (threads started later inherit their creator's)
            for thread in process.threads():
                with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                    os.sched_setaffinity(thread.id, chosen)

    def start(self) -> None:
        self._start = {name: sum(p.cpu_times()[:2]) for name, p in self.processes.items()}

    def per_request(self, requests: int) -> dict[str, float]:
        used = {name: (sum(p.cpu_times()[:2]) - self._start[name]) * 1000 / requests
                for name, p in self.processes.items()}
        return {name: used[name] for name in sorted(used, key=lambda n: n == "this process")}


class MachineMeter:
    """How this machine's CPU time was spent since the meter was made: the share its hypervisor
    gave to others (``steal``: a run during which it was high measured the neighbours too) and
    the share left idle (a closed loop that leaves cores idle is held up by waits, not CPU)."""

    def __init__(self) -> None:
        self._start = psutil.cpu_times()

    def describe(self) -> str:
        now = psutil.cpu_times()
        # user .. steal: the guest times are already inside user
        total = sum(now[:8]) - sum(self._start[:8])

        def share(field: str) -> float:
            spent = getattr(now, field, 0.0) - getattr(self._start, field, 0.0)  # steal: Linux only
            return spent / total if total > 0 else 0.0

        return f"{share('idle'):.0%} idle, {share('steal'):.1%} stolen"


@contextlib.contextmanager
def fleet(model_configs: list[dict], cores: Cores) -> Iterator[tuple[str, CpuMeter]]:
    """``speechfleet serve`` with these models (private Redis), pinned, ready; stopped after."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yml"
        config.write_text(yaml.safe_dump({"model_configs": model_configs}))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        env["SPEECHFLEET_TORCH_THREADS"] = str(cores.model_threads)
        serve = subprocess.Popen([sys.executable, "-m", "speechfleet.cli", "serve", "--config", str(config),
                                  "--port", str(port)], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline or serve.poll() is not None:
                    raise RuntimeError("fleet did not become ready")
                time.sleep(0.5)
            meter = CpuMeter(serve.pid)
            meter.pin(cores)
            yield base, meter
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)


async def drive(base: str, label: str, send: Send, requests: int, clients: int, meter: CpuMeter,
                warmup: int | None = None) -> Result:
    """``clients`` closed-loop clients share ``requests`` calls of ``send(http, index)``."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    aiohttp = _aiohttp()
    # httpx's timeout=300 was per phase (connect, each read); a warm-up larger than the
    # connection limit queues for a connection without a total budget running out
    timeout = aiohttp.ClientTimeout(total=None, connect=300, sock_read=300)
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=clients), timeout=timeout) as session:
        http = LoadClient(session)

        async def client() -> None:
            nonlocal errors
            for index in counter:
                started = time.perf_counter()
                response = await send(http, index)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        await asyncio.gather(*(send(http, i) for i in range(warmup if warmup is not None else clients)))
        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        cpu = meter.per_request(requests)
        cpu["load generator"] = cpu.pop("this process")
        return Result(label, elapsed, latencies, errors, cpu)


# one sentence per TTS request, shared by the TTS benchmarks
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Speech synthesis turns written text into spoken audio.",
    "Each request in this benchmark asks for one sentence.",
    "A fleet of workers shares the work of many clients.",
    "Numbers like forty two are read aloud as words.",
    "Questions sound a little different, don't they?",
    "The results come back as small wave files.",
    "Short sentences keep the first audio quick to arrive.",
]
