"""Prometheus metrics at /metrics on each service (no auth: deployments keep it on the internal network).

Request counts and latencies by route and status, ledger entries by kind, idempotent replays, job runs and
their durations, event-consumer lag and dead letters, and the database pool. With several granian workers,
each worker serves its own numbers (scrape each pod; PROMETHEUS_MULTIPROC_DIR is not used).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

HTTP_REQUESTS = Counter(
    "loyalty_http_requests_total", "HTTP requests answered", ["service", "route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "loyalty_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LEDGER_ENTRIES = Counter("loyalty_ledger_entries_total", "Ledger entries written, by kind", ["kind"])
IDEMPOTENT_REPLAYS = Counter("loyalty_idempotent_replays_total", "Mutating calls answered by replay", ["service"])
JOB_RUNS = Counter("loyalty_job_runs_total", "Job runs by outcome", ["service", "job", "outcome"])
JOB_SECONDS = Histogram(
    "loyalty_job_run_duration_seconds",
    "Job run durations",
    ["service", "job"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
)
CONSUMER_LAG = Gauge("loyalty_event_consumer_lag_events", "Events not yet read by a consumer", ["service", "consumer"])
DEAD_LETTERS = Gauge("loyalty_event_dead_letters", "Parked events not yet replayed", ["service"])
WEBHOOKS_PENDING = Gauge("loyalty_webhook_deliveries_pending", "Webhook deliveries waiting to be sent", ["service"])
DB_POOL = Gauge("loyalty_db_pool_connections", "Database pool connections", ["service", "state"])


async def refresh(service: str, state: Any) -> None:
    """Gauges that are read from the database and the pool at scrape time."""
    from loyalty_common.eventbus import Consumer, lag

    engine = state.engine
    pool = engine.pool
    for name, value in (("checked_out", pool.checkedout()), ("size", pool.size()), ("overflow", pool.overflow())):
        DB_POOL.labels(service, name).set(value)
    consumers = [c for c in getattr(state, "consumers", []) if isinstance(c, Consumer)]
    for consumer in consumers:
        source = consumer.subscription.source
        if hasattr(source, "table"):
            CONSUMER_LAG.labels(service, consumer.subscription.name).set(
                await lag(engine, source, consumer.tables, consumer.subscription.name)  # type: ignore[arg-type]
            )
    if consumers:
        tables = consumers[0].tables
        async with engine.connect() as conn:
            dead = (
                await conn.execute(
                    select(func.count())
                    .select_from(tables.dead_letters)
                    .where(tables.dead_letters.c.replayed_at.is_(None))
                )
            ).scalar_one()
            pending = (
                await conn.execute(
                    select(func.count())
                    .select_from(tables.webhook_deliveries)
                    .where(tables.webhook_deliveries.c.status == "pending")
                )
            ).scalar_one()
        DEAD_LETTERS.labels(service).set(dead)
        WEBHOOKS_PENDING.labels(service).set(pending)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
