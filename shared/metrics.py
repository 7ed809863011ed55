"""Prometheus metrics: HTTP requests of every service, and the business signals operations watch.

`GET /metrics` (text exposition format) on every service:

- `http_requests_total{service,method,route,status}` and the latency histogram
  `http_request_duration_seconds{service,method,route}`; `route` is the route template
  (`/api/v1/orders/{order_no}`), `unmatched` for unknown paths, so cardinality stays bounded;
- business gauges computed at scrape time from PostgreSQL and Redis, by the service that owns
  them (see `SIGNALS`): bank lines by outcome, the matcher's backlog, the review queue's depth and
  oldest age, SMS by status and the outbox's oldest pending age, Celery queue lengths.
  A failing query does not fail the scrape: `reserved_share_signal_up{signal}` turns 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests served, by route template and status",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request duration (until the response is sent), by route template",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(service, method, route, str(status)).inc()
    HTTP_LATENCY.labels(service, method, route).observe(seconds)


# ---------------------------------------------------------------------------------------------
# business signals, computed at scrape

Signal = Callable[[], Awaitable[list[Metric]]]


async def _rows(sql: str) -> list[tuple[object, ...]]:
    from shared.db import get_engine

    async with get_engine().connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]


def _gauge(name: str, doc: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


async def bank_lines() -> list[Metric]:
    by_outcome = _gauge(
        "reserved_share_bank_lines", "Bank statement lines imported, by outcome", ["outcome"]
    )
    for outcome, count in await _rows(
        "SELECT outcome, count(*) FROM bank_transactions GROUP BY outcome"
    ):
        by_outcome.add_metric([str(outcome)], float(count))  # type: ignore[arg-type]
    backlog = _gauge(
        "reserved_share_match_queue_depth", "Bank lines waiting for the matcher (match_work)"
    )
    ((depth,),) = await _rows("SELECT coalesce(sum(lines), 0) FROM match_work")
    backlog.add_metric([], float(depth))  # type: ignore[arg-type]
    oldest = _gauge(
        "reserved_share_pending_line_oldest_age_seconds",
        "Age of the oldest bank line still pending matching (0 when none)",
    )
    ((age,),) = await _rows(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "
        "FROM bank_transactions WHERE outcome = 'pending'"
    )
    oldest.add_metric([], float(age))  # type: ignore[arg-type]
    return [by_outcome, backlog, oldest]


async def review_queue() -> list[Metric]:
    depth = _gauge("reserved_share_review_cases_open", "Open review cases, by reason", ["reason"])
    for reason, count in await _rows(
        "SELECT reason, count(*) FROM review_cases WHERE status = 'open' GROUP BY reason"
    ):
        depth.add_metric([str(reason)], float(count))  # type: ignore[arg-type]
    oldest = _gauge(
        "reserved_share_review_oldest_open_age_seconds",
        "Age of the oldest open review case (0 when none)",
    )
    ((age,),) = await _rows(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "
        "FROM review_cases WHERE status = 'open'"
    )
    oldest.add_metric([], float(age))  # type: ignore[arg-type]
    return [depth, oldest]


async def sms_outbox() -> list[Metric]:
    by_status = _gauge("reserved_share_sms", "SMS outbox rows, by status", ["status"])
    for status, count in await _rows("SELECT status, count(*) FROM sms_outbox GROUP BY status"):
        by_status.add_metric([str(status)], float(count))  # type: ignore[arg-type]
    oldest = _gauge(
        "reserved_share_sms_outbox_oldest_age_seconds",
        "Age of the oldest SMS not yet sent (pending or sending; 0 when none)",
    )
    ((age,),) = await _rows(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "
        "FROM sms_outbox WHERE status IN ('pending', 'sending')"
    )
    oldest.add_metric([], float(age))  # type: ignore[arg-type]
    return [by_status, oldest]


async def celery_queues() -> list[Metric]:
    from shared.celery_app import QUEUES
    from shared.web import redis_client

    lengths = _gauge(
        "reserved_share_celery_queue_length", "Messages waiting in a Celery queue", ["queue"]
    )
    client = redis_client()
    try:
        for queue in QUEUES:
            lengths.add_metric([queue], float(await client.llen(queue)))
    finally:
        await client.aclose()
    return [lengths]


SIGNALS: dict[str, dict[str, Signal]] = {
    "payments": {
        "bank_lines": bank_lines,
        "review_queue": review_queue,
        "celery_queues": celery_queues,
    },
    "notify": {"sms_outbox": sms_outbox, "celery_queues": celery_queues},
}
"""Business signals each service computes at scrape (a service not listed has HTTP metrics only;
a new signal is one async function returning metric families)."""

SIGNAL_TIMEOUT_SECONDS = 5.0


class _Precomputed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


async def render(service: str) -> bytes:
    """The exposition text of this process's HTTP metrics plus `service`'s business signals."""
    families: list[Metric] = []
    up = _gauge("reserved_share_signal_up", "1 if the signal's query succeeded", ["signal"])
    for name, signal in SIGNALS.get(service, {}).items():
        try:
            families += await asyncio.wait_for(signal(), SIGNAL_TIMEOUT_SECONDS)
            up.add_metric([name], 1.0)
        except Exception as exc:  # a broken signal is visible, never a failed scrape
            log.warning("metrics signal %s failed: %s", name, type(exc).__name__)
            up.add_metric([name], 0.0)
    if SIGNALS.get(service):
        families.append(up)
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Precomputed(families))
    return generate_latest(REGISTRY) + generate_latest(extra)
