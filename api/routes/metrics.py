"""GET /metrics: Prometheus text format, read from Redis at scrape time (queue depths, live
consumers, and the histograms and counters every worker adds to), so the numbers hold
however many API replicas and workers run."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from api.deps import CatalogDep, DispatcherDep
from jobcontract.keys import REALTIME_SESSIONS_KEY
from jobcontract.metrics import COUNTERS, HISTOGRAMS, counter_key, histogram_key

router = APIRouter(tags=["health"])


class _Snapshot:
    """A prometheus_client collector over values already read from Redis."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        yield from self.families


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, catalog: CatalogDep, dispatcher: DispatcherDep) -> Response:
    client = request.app.state.redis
    depth = GaugeMetricFamily("speechfleet_queue_depth", "messages waiting in a model's queue (all priorities; a message "
                              "carries one job, or several one-step jobs sent together)",
                              labels=["model"])
    consumers = GaugeMetricFamily("speechfleet_live_consumers", "worker processes serving a model", labels=["model"])
    for name, config in catalog.configs.items():
        depth.add_metric([name], await dispatcher.queue_depth(config.queue))
        consumers.add_metric([name], await dispatcher.live_consumers(name))
    families: list = [depth, consumers]
    sessions = GaugeMetricFamily("speechfleet_realtime_sessions_open", "realtime sessions open (all API replicas)")
    sessions.add_metric([], await client.zcount(REALTIME_SESSIONS_KEY, time.time(), "+inf"))
    families.append(sessions)

    for metric, (description, buckets) in HISTOGRAMS.items():
        family = HistogramMetricFamily(f"speechfleet_{metric}", description, labels=["model"])
        for name in catalog.configs:
            raw = await client.hgetall(histogram_key(metric, name))
            if not raw:
                continue
            cumulative = [(f"{bound:g}", float(raw.get(f"le:{bound:g}", 0))) for bound in buckets]
            cumulative.append(("+Inf", float(raw.get("count", 0))))
            family.add_metric([name], cumulative, sum_value=float(raw.get("sum", 0)))
        families.append(family)

    for metric, (description, labels) in COUNTERS.items():
        family = CounterMetricFamily(f"speechfleet_{metric}", description, labels=list(labels))
        for label_values, value in (await client.hgetall(counter_key(metric))).items():
            family.add_metric(label_values.split("|"), float(value))
        families.append(family)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


