"""Events between the services: each service's transactional outbox, read by consumers in the other service.

Delivery is at least once; handlers are made idempotent by an inbox of handled event ids (checked in the same
transaction as the handler's own writes). A member's events are handled in the order they happened: when one
fails, it and every later event of that member wait in `event_retries` and are retried with backoff, while
other members' events go on; an event that keeps failing is parked in `dead_letters` for an operator to
replay. Consumers wake on PostgreSQL LISTEN/NOTIFY and poll as a fallback.

The transport is `EventSource`: today the source service's outbox table in the one shared database; a broker
(NATS JetStream, RabbitMQ, Kafka) can stand in its place when the services get separate databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import msgspec
import structlog
from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.clock import Clock
from loyalty_common.db import Tx, libpq_url, unit_of_work
from loyalty_common.errors import describe_failure
from loyalty_common.tables import CommonTables

log = structlog.get_logger("loyalty.events")


class StoredEvent(msgspec.Struct, frozen=True):
    member_id: UUID
    event_id: UUID
    event_type: str
    event_version: int
    payload: dict[str, Any]
    occurred_at: datetime
    xid: int
    seq: int


Handler = Callable[[Tx, StoredEvent], Awaitable[None]]


class EventSource(Protocol):
    """Where a consumer reads events from, in a stable order, after a position."""

    name: str
    channel: str

    async def fetch(self, tx: Tx, after: tuple[int, int], limit: int) -> list[StoredEvent]: ...


class OutboxSource:
    """A service's outbox table as an event source. Only events of transactions older than every running one
    are read, so a transaction that commits late can never be skipped."""

    def __init__(self, outbox: Table) -> None:
        self.table = outbox
        self.name = str(outbox.schema)
        self.channel = notify_channel(self.name)

    async def fetch(self, tx: Tx, after: tuple[int, int], limit: int) -> list[StoredEvent]:
        o = self.table
        horizon = text("(pg_snapshot_xmin(pg_current_snapshot())::text)::bigint")
        rows = await tx.execute(
            select(
                o.c.member_id,
                o.c.event_id,
                o.c.event_type,
                o.c.event_version,
                o.c.payload,
                o.c.occurred_at,
                o.c.xid,
                o.c.seq,
            )
            .where(func.row(o.c.xid, o.c.seq) > func.row(after[0], after[1]), o.c.xid < horizon)
            .order_by(o.c.xid, o.c.seq)
            .limit(limit)
        )
        return [StoredEvent(*row) for row in rows]


def notify_channel(schema: str) -> str:
    return f"loyalty_outbox_{schema}"


def outbox_of(schema: str) -> OutboxSource:
    """The outbox of the service that owns `schema`, read without importing that service."""
    from loyalty_common.tables import define_common_tables, service_metadata

    return OutboxSource(define_common_tables(service_metadata(schema)).outbox)


ANY_EVENT = "*"


@dataclass
class Subscription:
    """What one consumer handles, from which source. Event types without a handler are passed over; a handler
    under `ANY_EVENT` takes every type."""

    name: str
    source: EventSource
    handlers: dict[str, Handler]
    max_attempts: int = 8
    base_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(minutes=10)

    def handler(self, event_type: str) -> Handler | None:
        return self.handlers.get(event_type) or self.handlers.get(ANY_EVENT)

    def backoff(self, attempts: int) -> timedelta:
        delay: timedelta = self.base_backoff * (2 ** max(0, attempts - 1))
        return min(self.max_backoff, delay)


@dataclass
class Consumer:
    engine: AsyncEngine
    tables: CommonTables
    subscription: Subscription
    clock: Clock
    database_url: str | None = None
    batch: int = 200
    poll_interval: float = 1.0
    running: bool = False
    handled: int = 0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    # -- the loop --------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Handle events until `stop` is set. Several processes may run the same consumer: one leads (a session
        advisory lock), the others wait to take over."""
        listener: asyncpg.Connection | None = None
        lock_conn = None
        try:
            while not stop.is_set():
                lock_conn = await self._lead(stop)
                if lock_conn is None:
                    return
                listener = await self._listen()
                self.running = True
                while not stop.is_set():
                    try:
                        count = await self.step()
                    except Exception as exc:
                        log.error("consumer_step_failed", consumer=self.subscription.name, **describe_failure(exc))
                        count = 0
                    if count == 0:
                        self._wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wait(stop), timeout=self.poll_interval)
        finally:
            self.running = False
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()
            if lock_conn is not None:
                with contextlib.suppress(Exception):
                    await lock_conn.close()

    async def _wait(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _lead(self, stop: asyncio.Event) -> Any:
        key = f"consumer:{self.tables.inbox.schema}:{self.subscription.name}"
        while not stop.is_set():
            conn = await self.engine.connect()
            got = (await conn.execute(select(func.pg_try_advisory_lock(func.hashtextextended(key, 0))))).scalar_one()
            await conn.commit()
            if got:
                return conn
            await conn.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2.0)
        return None

    async def _listen(self) -> asyncpg.Connection | None:
        if not self.database_url:
            return None
        try:
            conn = await asyncpg.connect(libpq_url(self.database_url))
            await conn.add_listener(self.subscription.source.channel, lambda *_: self._wake.set())
        except Exception as exc:
            log.warning("consumer_listen_failed", consumer=self.subscription.name, **describe_failure(exc))
            return None
        return conn

    # -- one pass --------------------------------------------------------------------------------------
    async def step(self) -> int:
        """Read and handle the next batch of events, then the retries that are due. Returns events handled."""
        sub = self.subscription
        async with self.engine.connect() as conn:
            position = await self._position(conn)
            events = await sub.source.fetch(conn, position, self.batch)
            retries = self.tables.event_retries
            waiting = set(
                (
                    await conn.execute(select(retries.c.member_id).where(retries.c.consumer == sub.name).distinct())
                ).scalars()
            )
            await conn.commit()
        handled = 0
        for event in events:
            if sub.handler(event.event_type) is not None:
                if event.member_id in waiting:
                    await self._enqueue(event, attempts=0, error=None)
                elif (error := await self._try_handle(event)) is None:
                    handled += 1
                else:
                    await self._enqueue(event, attempts=1, error=error)
                    waiting.add(event.member_id)
            position = (event.xid, event.seq)
        if events:
            await self._save_position(position)
        retried = await self._retry_due()
        self.handled += handled + retried
        return len(events) + retried

    async def drain(self, max_passes: int = 100) -> None:
        """Handle everything available now (tests and the CLI use it)."""
        for _ in range(max_passes):
            if await self.step() == 0:
                return

    async def _try_handle(self, event: StoredEvent) -> str | None:
        """Handle one event in its own transaction (skipped if the inbox has it); the failure's type, or None."""
        inbox = self.tables.inbox
        try:
            async with unit_of_work(self.engine) as tx:
                first = (
                    await tx.execute(
                        insert(inbox)
                        .values(
                            member_id=event.member_id,
                            consumer=self.subscription.name,
                            event_id=event.event_id,
                            processed_at=self.clock.now(),
                        )
                        .on_conflict_do_nothing()
                        .returning(inbox.c.event_id)
                    )
                ).first()
                handler = self.subscription.handler(event.event_type)
                if first is not None and handler is not None:
                    await handler(tx, event)
        except Exception as exc:
            failure = describe_failure(exc)
            log.warning(
                "event_handler_failed",
                consumer=self.subscription.name,
                event_type=event.event_type,
                event_id=str(event.event_id),
                **failure,
            )
            return str(failure["error_type"])
        return None

    async def _enqueue(self, event: StoredEvent, *, attempts: int, error: str | None) -> None:
        retries = self.tables.event_retries
        now = self.clock.now()
        due = now + self.subscription.backoff(attempts) if attempts else now
        async with unit_of_work(self.engine) as tx:
            await tx.execute(
                insert(retries)
                .values(
                    member_id=event.member_id,
                    consumer=self.subscription.name,
                    event_id=event.event_id,
                    xid=event.xid,
                    seq=event.seq,
                    event=msgspec.to_builtins(event),
                    attempts=attempts,
                    next_attempt_at=due,
                    last_error=error,
                )
                .on_conflict_do_nothing()
            )

    async def _retry_due(self) -> int:
        """For each member whose oldest waiting event is due, handle their waiting events in order until one
        fails again (it waits longer) or, out of attempts, is parked."""
        retries = self.tables.event_retries
        now = self.clock.now()
        async with self.engine.connect() as conn:
            rows = list(
                await conn.execute(
                    select(retries)
                    .where(retries.c.consumer == self.subscription.name)
                    .order_by(retries.c.member_id, retries.c.xid, retries.c.seq)
                )
            )
            await conn.commit()
        handled = 0
        by_member: dict[UUID, list[Any]] = {}
        for row in rows:
            by_member.setdefault(row.member_id, []).append(row)
        for member_rows in by_member.values():
            head = member_rows[0]
            if head.next_attempt_at > now:
                continue
            for row in member_rows:
                event = msgspec.convert(row.event, StoredEvent)
                error = await self._try_handle(event)
                if error is None:
                    handled += 1
                    await self._forget(event)
                    continue
                attempts = row.attempts + 1
                if attempts >= self.subscription.max_attempts:
                    await self._park(event, attempts, error)
                    continue
                await self._reschedule(event, attempts, error)
                break
        return handled

    async def _forget(self, event: StoredEvent) -> None:
        retries = self.tables.event_retries
        async with unit_of_work(self.engine) as tx:
            await tx.execute(
                delete(retries).where(
                    retries.c.member_id == event.member_id,
                    retries.c.consumer == self.subscription.name,
                    retries.c.event_id == event.event_id,
                )
            )

    async def _reschedule(self, event: StoredEvent, attempts: int, error: str) -> None:
        retries = self.tables.event_retries
        async with unit_of_work(self.engine) as tx:
            await tx.execute(
                update(retries)
                .where(
                    retries.c.member_id == event.member_id,
                    retries.c.consumer == self.subscription.name,
                    retries.c.event_id == event.event_id,
                )
                .values(
                    attempts=attempts,
                    next_attempt_at=self.clock.now() + self.subscription.backoff(attempts),
                    last_error=error,
                )
            )

    async def _park(self, event: StoredEvent, attempts: int, error: str) -> None:
        retries, dead = self.tables.event_retries, self.tables.dead_letters
        async with unit_of_work(self.engine) as tx:
            await tx.execute(
                insert(dead).values(
                    member_id=event.member_id,
                    dead_letter_id=uuid.uuid4(),
                    consumer=self.subscription.name,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    event=msgspec.to_builtins(event),
                    attempts=attempts,
                    last_error=error,
                    parked_at=self.clock.now(),
                    replayed_at=None,
                )
            )
            await tx.execute(
                delete(retries).where(
                    retries.c.member_id == event.member_id,
                    retries.c.consumer == self.subscription.name,
                    retries.c.event_id == event.event_id,
                )
            )
        log.error(
            "event_parked",
            consumer=self.subscription.name,
            event_type=event.event_type,
            event_id=str(event.event_id),
            attempts=attempts,
        )

    async def _position(self, conn: Any) -> tuple[int, int]:
        p = self.tables.consumer_positions
        row = (
            await conn.execute(select(p.c.last_xid, p.c.last_seq).where(p.c.consumer == self.subscription.name))
        ).first()
        return (int(row.last_xid), int(row.last_seq)) if row else (0, 0)

    async def _save_position(self, position: tuple[int, int]) -> None:
        p = self.tables.consumer_positions
        stmt = insert(p).values(
            consumer=self.subscription.name, last_xid=position[0], last_seq=position[1], updated_at=self.clock.now()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[p.c.consumer],
            set_={
                "last_xid": stmt.excluded.last_xid,
                "last_seq": stmt.excluded.last_seq,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        async with unit_of_work(self.engine) as tx:
            await tx.execute(stmt)


async def replay_dead_letter(tx: Tx, tables: CommonTables, dead_letter_id: UUID, clock: Clock) -> bool:
    """Put a parked event back in line (in its original order among the member's waiting events)."""
    dead, retries = tables.dead_letters, tables.event_retries
    row = (
        await tx.execute(
            select(dead).where(dead.c.dead_letter_id == dead_letter_id, dead.c.replayed_at.is_(None)).with_for_update()
        )
    ).first()
    if row is None:
        return False
    event = msgspec.convert(row.event, StoredEvent)
    await tx.execute(
        insert(retries)
        .values(
            member_id=event.member_id,
            consumer=row.consumer,
            event_id=event.event_id,
            xid=event.xid,
            seq=event.seq,
            event=row.event,
            attempts=0,
            next_attempt_at=clock.now(),
            last_error=None,
        )
        .on_conflict_do_nothing()
    )
    await tx.execute(
        update(dead)
        .where(dead.c.member_id == row.member_id, dead.c.dead_letter_id == dead_letter_id)
        .values(replayed_at=clock.now())
    )
    return True


async def lag(engine: AsyncEngine, source: OutboxSource, tables: CommonTables, consumer: str) -> int:
    """Events in the source not yet read by the consumer (for metrics and readiness)."""
    o, p = source.table, tables.consumer_positions
    async with engine.connect() as conn:
        row = (await conn.execute(select(p.c.last_xid, p.c.last_seq).where(p.c.consumer == consumer))).first()
        after = (int(row.last_xid), int(row.last_seq)) if row else (0, 0)
        count: int = (
            await conn.execute(
                select(func.count()).select_from(o).where(func.row(o.c.xid, o.c.seq) > func.row(after[0], after[1]))
            )
        ).scalar_one()
    return count
