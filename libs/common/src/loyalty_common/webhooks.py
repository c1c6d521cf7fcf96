"""Outbound webhooks: the same events the services exchange, sent to brand systems' HTTPS endpoints.

An endpoint subscribes to event types (or `*`). A consumer of the service's own outbox turns each event into a
delivery per subscribed endpoint; a sender posts deliveries, signed with the endpoint's secret:

    X-Loyalty-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

Failures are retried with exponential backoff for a day, every attempt is logged, and an operator can list
deliveries and redeliver one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.clock import Clock
from loyalty_common.db import Tx, unit_of_work
from loyalty_common.errors import FieldError, ValidationFailed, describe_failure
from loyalty_common.eventbus import ANY_EVENT, Consumer, OutboxSource, StoredEvent, Subscription
from loyalty_common.events import EVENT_TYPES
from loyalty_common.tables import CommonTables

log = structlog.get_logger("loyalty.webhooks")

SIGNATURE_HEADER = "X-Loyalty-Signature"
RETRY_FOR = timedelta(days=1)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
LEASE = timedelta(seconds=60)
TIMEOUT_SECONDS = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, *, now: int | None = None, tolerance: int = 300) -> bool:
    """What a receiving brand system does (and what the tests do)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else int(time.time())) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_url(url: str, *, production: bool) -> None:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and loopback and not production:
        return
    raise ValidationFailed([FieldError("url", "must be an https:// URL (http only to loopback outside production)")])


def check_event_types(event_types: list[str]) -> None:
    unknown = [t for t in event_types if t != ANY_EVENT and t not in EVENT_TYPES]
    if unknown or not event_types:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValidationFailed([FieldError("event_types", f"unknown {unknown}; known: {known}, or *")])


def backoff(attempts: int) -> timedelta:
    wait: timedelta = FIRST_RETRY * (2 ** max(0, attempts - 1))
    return min(LONGEST_WAIT, wait)


def dispatcher(source: OutboxSource, tables: CommonTables, clock: Clock) -> Subscription:
    """Turns every event of the service's own outbox into deliveries for the endpoints that want it."""
    endpoints, deliveries = tables.webhook_endpoints, tables.webhook_deliveries

    async def fan_out(tx: Tx, event: StoredEvent) -> None:
        wanted = list(
            (
                await tx.execute(
                    select(endpoints.c.endpoint_id).where(
                        endpoints.c.active,
                        endpoints.c.event_types.contains([event.event_type])
                        | endpoints.c.event_types.contains([ANY_EVENT]),
                    )
                )
            ).scalars()
        )
        if not wanted:
            return
        now = clock.now()
        body = {
            "event_id": str(event.event_id),
            "event_type": event.event_type,
            "event_version": event.event_version,
            "occurred_at": event.occurred_at.isoformat(),
            "data": event.payload,
        }
        await tx.execute(
            insert(deliveries),
            [
                {
                    "delivery_id": uuid.uuid4(),
                    "endpoint_id": endpoint_id,
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_status_code": None,
                    "last_error": None,
                    "created_at": now,
                    "delivered_at": None,
                }
                for endpoint_id in wanted
            ],
        )

    return Subscription(name="webhooks", source=source, handlers={ANY_EVENT: fan_out})


@dataclass
class Sender:
    """Posts due deliveries. Several processes may run one: each claims deliveries with a lease."""

    engine: AsyncEngine
    tables: CommonTables
    clock: Clock
    batch: int = 20
    poll_interval: float = 1.0
    transport: httpx.AsyncBaseTransport | None = None
    running: bool = False
    _client: httpx.AsyncClient | None = field(default=None, repr=False)

    async def run(self, stop: asyncio.Event) -> None:
        self.running = True
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, transport=self.transport) as client:
                self._client = client
                while not stop.is_set():
                    try:
                        sent = await self.step()
                    except Exception as exc:
                        log.error("webhook_step_failed", **describe_failure(exc))
                        sent = 0
                    if not sent:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=self.poll_interval)
        finally:
            self.running = False
            self._client = None

    async def step(self) -> int:
        claimed = await self._claim()
        if not claimed:
            return 0
        client = self._client or httpx.AsyncClient(timeout=TIMEOUT_SECONDS, transport=self.transport)
        try:
            await asyncio.gather(*(self._send(client, row) for row in claimed))
        finally:
            if self._client is None:
                await client.aclose()
        return len(claimed)

    async def _claim(self) -> list[Any]:
        d, e = self.tables.webhook_deliveries, self.tables.webhook_endpoints
        now = self.clock.now()
        async with unit_of_work(self.engine) as tx:
            rows = list(
                await tx.execute(
                    select(d.c.delivery_id, d.c.body, d.c.attempts, d.c.created_at, d.c.event_type, e.c.url, e.c.secret)
                    .join(e, e.c.endpoint_id == d.c.endpoint_id)
                    .where(d.c.status == "pending", d.c.next_attempt_at <= now, e.c.active)
                    .order_by(d.c.next_attempt_at)
                    .limit(self.batch)
                    .with_for_update(of=d, skip_locked=True)
                )
            )
            if rows:
                await tx.execute(
                    update(d)
                    .where(d.c.delivery_id.in_([r.delivery_id for r in rows]))
                    .values(next_attempt_at=now + LEASE)
                )
        return rows

    async def _send(self, client: httpx.AsyncClient, row: Any) -> None:
        body = msgspec.json.encode(row.body)
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "loyalty-webhooks/1",
            "X-Loyalty-Event": row.event_type,
            "X-Loyalty-Delivery": str(row.delivery_id),
            SIGNATURE_HEADER: sign(row.secret, timestamp, body),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(row.url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        duration = int((time.perf_counter() - started) * 1000)
        await self._record(row, status, error, duration)

    async def _record(self, row: Any, status: int | None, error: str | None, duration_ms: int) -> None:
        d, a = self.tables.webhook_deliveries, self.tables.webhook_attempts
        now = self.clock.now()
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": status, "last_error": error}
        if error is None:
            values.update(status="succeeded", delivered_at=now)
        elif now + backoff(attempts) > row.created_at + RETRY_FOR:
            values.update(status="failed")
        else:
            values.update(next_attempt_at=now + backoff(attempts))
        async with unit_of_work(self.engine) as tx:
            await tx.execute(
                insert(a).values(
                    attempt_id=uuid.uuid4(),
                    delivery_id=row.delivery_id,
                    attempted_at=now,
                    status_code=status,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            await tx.execute(update(d).where(d.c.delivery_id == row.delivery_id).values(**values))
        if error is not None:
            log.warning(
                "webhook_delivery_failed",
                delivery_id=str(row.delivery_id),
                attempts=attempts,
                status_code=status,
                error=error,
                gave_up=values.get("status") == "failed",
            )


async def redeliver(tx: Tx, tables: CommonTables, delivery_id: uuid.UUID, clock: Clock) -> bool:
    d = tables.webhook_deliveries
    result = await tx.execute(
        update(d)
        .where(d.c.delivery_id == delivery_id)
        .values(status="pending", next_attempt_at=clock.now())
        .returning(d.c.delivery_id)
    )
    return result.first() is not None


def workers(
    engine: AsyncEngine, tables: CommonTables, source: OutboxSource, clock: Clock, database_url: str | None
) -> list[Any]:
    """The dispatcher (a consumer of the service's own outbox) and the sender."""
    return [
        Consumer(
            engine=engine,
            tables=tables,
            subscription=dispatcher(source, tables, clock),
            clock=clock,
            database_url=database_url,
        ),
        Sender(engine=engine, tables=tables, clock=clock),
    ]
