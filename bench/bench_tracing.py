"""What traces cost: the same fleet and load with OpenTelemetry off and on, from one run.

``speechfleet serve`` (private Redis, one Silero VAD worker, the API) three times: as
shipped (no ``OTEL_EXPORTER_OTLP_ENDPOINT``: nothing instrumented), exporting every job's trace
over OTLP/HTTP to a collector stand-in in this process (it parses each export and counts the
spans), and the same with one trace in ten sampled. Closed-loop clients send short VAD
requests (1-3 s CMU ARCTIC clips), where per-request overhead shows most. Prints requests/s,
p50/p95, CPU per request by process, spans received per request, the ratios to tracing off,
and what the tracing helpers cost per job while tracing is off.

    flock /tmp/bench.lock .venv/bin/python bench/bench_tracing.py [--requests 320] [--clients 32]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import threading
import timeit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import FIXTURES, Cores, drive, fleet
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from jobcontract import tracing

CLIPS = [(FIXTURES / f"cmu_arctic_us_{name}.wav").read_bytes()
         for name in ("aew_a0001", "aew_a0002", "aew_a0003", "axb_a0004", "axb_a0005", "axb_a0006")]
MODEL = {"name": "vad", "model": "package:silero_vad", "model_type": "SileroVAD", "max_batch_size": 16,
         "max_wait_ms": 5}


class Collector:
    """An OTLP/HTTP trace endpoint that counts the spans it is sent."""

    def __init__(self):
        self.spans = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                export = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["content-length"])))
                collector.spans += sum(len(scope.spans) for resource in export.resource_spans
                                       for scope in resource.scope_spans)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run(label: str, requests: int, clients: int, cores: Cores):
    payloads = [json.dumps({"model": "vad", "input_audio": base64.b64encode(clip).decode()}).encode() for clip in CLIPS]

    async def send(http, index):
        return await http.post("/v1/audio/vad", content=payloads[index % len(payloads)],
                               headers={"content-type": "application/json"})

    with fleet([MODEL], cores) as (base, meter):
        return asyncio.run(drive(base, label, send, requests, clients, meter))


def helper_cost_ns() -> float:
    """ns per job of the tracing calls the submit and step paths make while tracing is off."""
    def job() -> None:
        with tracing.started("job.submit", {}):
            tracing.current_carrier()
        tracing.job_context(None)
        tracing.span_between("job.queue_wait", 0.0, 1.0, {})

    calls = 100_000
    return min(timeit.repeat(job, number=calls, repeat=5)) / calls * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    cores = Cores.choose(shared=False)
    print(f"tracing cost: Silero VAD on 1-3 s clips, {args.clients} clients, {args.requests} requests per run, "
          f"{os.cpu_count()} CPU cores; {cores.describe()}")
    os.environ.pop(tracing.ENDPOINT_ENV, None)
    off = run("tracing off (as shipped)", args.requests, args.clients, cores)
    collector = Collector()
    os.environ[tracing.ENDPOINT_ENV] = collector.url
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "1000"
    try:
        on = run("tracing on (OTLP/HTTP)", args.requests, args.clients, cores)
        every_span = collector.spans
        # the SDK's standard sampler settings: one trace in ten recorded, workers following the API's choice
        os.environ.update(OTEL_TRACES_SAMPLER="parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG="0.1")
        sampled = run("tracing on, 1 trace in 10 sampled", args.requests, args.clients, cores)
    finally:
        for name in (tracing.ENDPOINT_ENV, "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
            os.environ.pop(name, None)
        collector.server.shutdown()
    for result in (off, on, sampled):
        print(result.line())
    sent = args.requests + args.clients  # warm-up included
    print(f"  spans received per request: {every_span / sent:.1f} all sampled, "
          f"{(collector.spans - every_span) / sent:.1f} one in ten")
    for label, result in (("on", on), ("1 in 10", sampled)):
        print(f"  {label} / off: throughput {result.rps / off.rps:.2f}, CPU per request "
              + ", ".join(f"{process} {result.cpu_ms[process] / off.cpu_ms[process]:.2f}"
                          for process in ("api", "worker vad")))
    print(f"  tracing off: the helpers on a job's path cost {helper_cost_ns():.0f} ns per job")


if __name__ == "__main__":
    main()
