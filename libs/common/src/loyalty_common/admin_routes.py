"""Operators' endpoints every service has, built once: job runs and the events dead-letter queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.audit import Audit, AuditRecord, actor_of
from loyalty_common.auth import principal_of, requires
from loyalty_common.clock import Clock
from loyalty_common.db import TxDep, unit_of_work
from loyalty_common.errors import ResourceNotFound
from loyalty_common.eventbus import replay_dead_letter
from loyalty_common.http import problems
from loyalty_common.idempotency import Answer, CallerScope, Idempotency, require_idempotency_key
from loyalty_common.jobs import Job, JobRun, recent_runs, run_job
from loyalty_common.pagination import Cursor, Limit, decode_cursor, encode_cursor
from loyalty_common.settings import Settings
from loyalty_common.tables import CommonTables
from loyalty_common.timeutil import display, display_opt
from loyalty_common.webhooks import check_event_types, check_url, new_secret, redeliver
from loyalty_common.writes import WriteSet


class JobRunRequest(msgspec.Struct, forbid_unknown_fields=True):
    as_of: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class JobRunPage(msgspec.Struct):
    items: list[JobRun]
    next_cursor: str | None


class DeadLetter(msgspec.Struct):
    dead_letter_id: UUID
    consumer: str
    event_id: UUID
    event_type: str
    member_id: UUID
    attempts: int
    last_error: str | None
    parked_at: datetime
    replayed_at: datetime | None
    payload: dict[str, Any]


class DeadLetterPage(msgspec.Struct):
    items: list[DeadLetter]
    next_cursor: str | None


class Replayed(msgspec.Struct):
    dead_letter_id: UUID
    replayed: bool


JobsFactory = Callable[[State], dict[str, Job]]


def jobs_controller(base: str, tables: CommonTables, jobs_of: JobsFactory) -> type[Controller]:
    """`POST {base}/jobs/{job}/run` (optional {"as_of"}) and `GET {base}/jobs/runs`, admin scope."""

    def out(run: JobRun, settings: Settings) -> JobRun:
        """The run with its instants in business time."""
        tz = settings.timezone
        return msgspec.structs.replace(
            run,
            as_of=display(run.as_of, tz),
            started_at=display(run.started_at, tz),
            finished_at=display_opt(run.finished_at, tz),
        )

    class JobsController(Controller):
        path = f"{base}/jobs"
        tags = ["admin", "jobs"]
        guards = [requires("admin")]

        @post(
            "/{job:str}/run", status_code=201, summary="Run a job now (the scheduler's code)", responses=problems(404)
        )
        async def run(
            self,
            request: Request[Any, Any, Any],
            job: FromPath[str],
            state: State,
            data: JSONBody[JobRunRequest | None] = None,
        ) -> JobRun:
            jobs = jobs_of(state)
            if job not in jobs:
                raise ResourceNotFound(f"No job {job!r}; jobs: {', '.join(sorted(jobs))}")
            clock: Clock = state.clock
            as_of = (data.as_of if data is not None and data.as_of is not None else None) or clock.now()
            actor = actor_of(request)
            result = await run_job(state.engine, tables, jobs[job], as_of, clock=clock, trigger=f"api:{actor}")
            async with unit_of_work(state.engine) as tx:
                await Audit(tables, clock).record(
                    tx,
                    request,
                    "job.run",
                    after={"run_id": str(result.run_id), "counts": result.counts},
                    detail=f"{job} as of {as_of.isoformat()}: {result.outcome}",
                )
            return out(result, state.settings)

        @get("/runs", summary="Job runs, newest first", responses=problems())
        async def runs(
            self,
            state: State,
            job: Annotated[str | None, QueryParameter(max_length=64)] = None,
            limit: Limit = 50,
            cursor: Cursor = None,
        ) -> JobRunPage:
            after = decode_cursor(cursor, 1)
            before = datetime.fromisoformat(after[0]) if after else None
            async with state.engine.connect() as conn:
                rows = await recent_runs(conn, tables, job=job, before=before, limit=limit + 1)
            items = [out(r, state.settings) for r in rows[:limit]]
            next_cursor = encode_cursor(rows[limit - 1].started_at.isoformat()) if len(rows) > limit else None
            return JobRunPage(items=items, next_cursor=next_cursor)

    return JobsController


def dead_letters_controller(base: str, tables: CommonTables) -> type[Controller]:
    """`GET {base}/events/dead-letters` and `POST {base}/events/dead-letters/{id}/replay`, admin scope."""
    dead = tables.dead_letters

    class DeadLettersController(Controller):
        path = f"{base}/events/dead-letters"
        tags = ["admin", "events"]
        guards = [requires("admin")]

        @get("", summary="Events that kept failing, newest first", responses=problems())
        async def list_dead_letters(self, state: State, limit: Limit = 50, cursor: Cursor = None) -> DeadLetterPage:
            engine: AsyncEngine = state.engine
            after = decode_cursor(cursor, 1)
            query = select(dead).order_by(dead.c.parked_at.desc()).limit(limit + 1)
            if after is not None:
                query = query.where(dead.c.parked_at < datetime.fromisoformat(after[0]))
            async with engine.connect() as conn:
                rows = list(await conn.execute(query))
            tz = state.settings.timezone
            items = [
                DeadLetter(
                    dead_letter_id=r.dead_letter_id,
                    consumer=r.consumer,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    member_id=r.member_id,
                    attempts=r.attempts,
                    last_error=r.last_error,
                    parked_at=display(r.parked_at, tz),
                    replayed_at=display_opt(r.replayed_at, tz),
                    payload=dict(r.event.get("payload", {})),
                )
                for r in rows[:limit]
            ]
            next_cursor = encode_cursor(rows[limit - 1].parked_at.isoformat()) if len(rows) > limit else None
            return DeadLetterPage(items=items, next_cursor=next_cursor)

        @post(
            "/{dead_letter_id:str}/replay",
            status_code=200,
            summary="Put a parked event back in line",
            responses=problems(404),
        )
        async def replay(
            self, request: Request[Any, Any, Any], dead_letter_id: FromPath[str], state: State
        ) -> Replayed:
            try:
                ident = UUID(dead_letter_id)
            except ValueError:
                raise ResourceNotFound("No such dead letter") from None
            async with unit_of_work(state.engine) as tx:
                done = await replay_dead_letter(tx, tables, ident, state.clock)
                if not done:
                    raise ResourceNotFound("No such dead letter waiting for a replay")
                await Audit(tables, state.clock).record(tx, request, "events.replay", detail=str(ident))
            return Replayed(dead_letter_id=ident, replayed=True)

    return DeadLettersController


class WebhookCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    event_types: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(min_length=1, max_length=50)]
    description: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class WebhookUpdate(msgspec.Struct, forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)] | msgspec.UnsetType = msgspec.UNSET
    event_types: list[str] | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class WebhookEndpoint(msgspec.Struct):
    endpoint_id: UUID
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    secret: str | None = None


class WebhookEndpointPage(msgspec.Struct):
    items: list[WebhookEndpoint]
    next_cursor: str | None = None


class WebhookAttempt(msgspec.Struct):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class WebhookDelivery(msgspec.Struct):
    delivery_id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    attempt_log: list[WebhookAttempt] | None = None


class WebhookDeliveryPage(msgspec.Struct):
    items: list[WebhookDelivery]
    next_cursor: str | None


def webhooks_controller(base: str, tables: CommonTables) -> type[Controller]:
    """Operators register endpoints per event type, list deliveries and redeliver one (admin scope)."""
    endpoints, deliveries, attempts = tables.webhook_endpoints, tables.webhook_deliveries, tables.webhook_attempts

    def endpoint_out(row: Any, settings: Settings, secret: str | None = None) -> WebhookEndpoint:
        tz = settings.timezone
        return WebhookEndpoint(
            endpoint_id=row.endpoint_id,
            url=row.url,
            event_types=list(row.event_types),
            description=row.description,
            active=row.active,
            created_by=row.created_by,
            created_at=display(row.created_at, tz),
            updated_at=display(row.updated_at, tz),
            secret=secret,
        )

    def delivery_out(row: Any, settings: Settings, log: list[Any] | None = None) -> WebhookDelivery:
        tz = settings.timezone
        return WebhookDelivery(
            delivery_id=row.delivery_id,
            endpoint_id=row.endpoint_id,
            event_id=row.event_id,
            event_type=row.event_type,
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=display(row.created_at, tz),
            next_attempt_at=display(row.next_attempt_at, tz) if row.status == "pending" else None,
            delivered_at=display_opt(row.delivered_at, tz),
            attempt_log=None
            if log is None
            else [WebhookAttempt(display(a.attempted_at, tz), a.status_code, a.error, a.duration_ms) for a in log],
        )

    def parse(raw: str, what: str) -> UUID:
        try:
            return UUID(raw)
        except ValueError:
            raise ResourceNotFound(f"No such {what}") from None

    class WebhooksController(Controller):
        path = f"{base}/webhooks"
        tags = ["admin", "webhooks"]
        guards = [requires("admin")]

        @post(
            "",
            status_code=201,
            guards=[require_idempotency_key],
            responses=problems(),
            summary="Register an endpoint; its signing secret is shown only in this answer",
        )
        async def create(
            self, request: Request[Any, Any, Any], data: JSONBody[WebhookCreate], tx: TxDep, state: State
        ) -> Any:
            settings: Settings = state.settings
            check_url(data.url, production=settings.is_production)
            check_event_types(data.event_types)
            actor = principal_of(request).name
            idempotency = Idempotency(tables, state.clock)

            async def create_endpoint(writes: WriteSet) -> Answer[WebhookEndpoint]:
                now = state.clock.now()
                secret = new_secret()
                row = {
                    "endpoint_id": uuid4(),
                    "url": data.url,
                    "event_types": sorted(set(data.event_types)),
                    "secret": secret,
                    "description": data.description,
                    "active": True,
                    "created_by": actor,
                    "created_at": now,
                    "updated_at": now,
                }
                await tx.execute(endpoints.insert().values(**row))
                created = endpoint_out(_Row(**row), settings)
                Audit(tables, state.clock).stage(writes, request, "webhook.create", after=created, detail=data.url)
                return Answer(201, endpoint_out(_Row(**row), settings, secret))

            return await idempotency.run(request, tx, CallerScope(actor), data, create_endpoint)

        @get("", summary="Registered endpoints (without their secrets)", responses=problems())
        async def list_endpoints(self, tx: TxDep, state: State) -> WebhookEndpointPage:
            rows = await tx.execute(select(endpoints).order_by(endpoints.c.created_at))
            return WebhookEndpointPage(items=[endpoint_out(r, state.settings) for r in rows])

        @patch(
            "/{endpoint_id:str}",
            guards=[require_idempotency_key],
            responses=problems(404),
            summary="Change an endpoint's URL, event types or description, or switch it off (active=false)",
        )
        async def update_endpoint(
            self,
            request: Request[Any, Any, Any],
            endpoint_id: FromPath[str],
            data: JSONBody[WebhookUpdate],
            tx: TxDep,
            state: State,
        ) -> Any:
            ident = parse(endpoint_id, "webhook endpoint")
            settings: Settings = state.settings
            changes: dict[str, Any] = {}
            if data.url is not msgspec.UNSET:
                check_url(data.url, production=settings.is_production)
                changes["url"] = data.url
            if data.event_types is not msgspec.UNSET:
                check_event_types(data.event_types)
                changes["event_types"] = sorted(set(data.event_types))
            if data.description is not msgspec.UNSET:
                changes["description"] = data.description
            if data.active is not msgspec.UNSET:
                changes["active"] = data.active
            actor = principal_of(request).name

            async def apply(writes: WriteSet) -> Answer[WebhookEndpoint]:
                before = (
                    await tx.execute(select(endpoints).where(endpoints.c.endpoint_id == ident).with_for_update())
                ).first()
                if before is None:
                    raise ResourceNotFound("No such webhook endpoint")
                row = (
                    await tx.execute(
                        update(endpoints)
                        .where(endpoints.c.endpoint_id == ident)
                        .values(**changes, updated_at=state.clock.now())
                        .returning(endpoints)
                    )
                ).first()
                assert row is not None
                after = endpoint_out(row, settings)
                Audit(tables, state.clock).stage(
                    writes, request, "webhook.update", before=endpoint_out(before, settings), after=after
                )
                return Answer(200, after)

            return await Idempotency(tables, state.clock).run(request, tx, CallerScope(actor), data, apply)

        @get("/deliveries", summary="Deliveries, newest first; filter by endpoint and status", responses=problems())
        async def list_deliveries(
            self,
            tx: TxDep,
            state: State,
            endpoint_id: Annotated[UUID | None, QueryParameter()] = None,
            status: Annotated[str | None, QueryParameter(max_length=16)] = None,
            limit: Limit = 50,
            cursor: Cursor = None,
        ) -> WebhookDeliveryPage:
            d = deliveries
            query = select(d).order_by(d.c.created_at.desc(), d.c.delivery_id).limit(limit + 1)
            if endpoint_id is not None:
                query = query.where(d.c.endpoint_id == endpoint_id)
            if status is not None:
                query = query.where(d.c.status == status)
            after = decode_cursor(cursor, 1)
            if after is not None:
                query = query.where(d.c.created_at < datetime.fromisoformat(after[0]))
            rows = list(await tx.execute(query))
            items = [delivery_out(r, state.settings) for r in rows[:limit]]
            next_cursor = encode_cursor(rows[limit - 1].created_at.isoformat()) if len(rows) > limit else None
            return WebhookDeliveryPage(items=items, next_cursor=next_cursor)

        @get("/deliveries/{delivery_id:str}", summary="One delivery with every attempt", responses=problems(404))
        async def delivery(self, delivery_id: FromPath[str], tx: TxDep, state: State) -> WebhookDelivery:
            ident = parse(delivery_id, "delivery")
            row = (await tx.execute(select(deliveries).where(deliveries.c.delivery_id == ident))).first()
            if row is None:
                raise ResourceNotFound("No such delivery")
            log = list(
                await tx.execute(
                    select(attempts).where(attempts.c.delivery_id == ident).order_by(attempts.c.attempted_at)
                )
            )
            return delivery_out(row, state.settings, log)

        @post(
            "/deliveries/{delivery_id:str}/redeliver",
            status_code=200,
            responses=problems(404),
            summary="Send a delivery again now (whatever its status)",
        )
        async def redeliver_one(
            self, request: Request[Any, Any, Any], delivery_id: FromPath[str], tx: TxDep, state: State
        ) -> WebhookDelivery:
            ident = parse(delivery_id, "delivery")
            if not await redeliver(tx, tables, ident, state.clock):
                raise ResourceNotFound("No such delivery")
            await Audit(tables, state.clock).record(tx, request, "webhook.redeliver", detail=str(ident))
            row = (await tx.execute(select(deliveries).where(deliveries.c.delivery_id == ident))).one()
            return delivery_out(row, state.settings)

    return WebhooksController


class _Row(msgspec.Struct):
    endpoint_id: UUID
    url: str
    event_types: list[str]
    secret: str
    description: str | None
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class AuditPage(msgspec.Struct):
    items: list[AuditRecord]
    next_cursor: str | None


def audit_controller(base: str, tables: CommonTables) -> type[Controller]:
    """`GET {base}/audit`: the service's audit log, newest first, filtered by actor, action, member and time."""
    log = tables.audit_log

    class AuditController(Controller):
        path = f"{base}/audit"
        tags = ["admin", "audit"]
        guards = [requires("admin")]

        @get("", summary="Admin actions, newest first", responses=problems())
        async def audit(
            self,
            tx: TxDep,
            state: State,
            actor: Annotated[str | None, QueryParameter(max_length=128)] = None,
            action: Annotated[str | None, QueryParameter(max_length=64)] = None,
            member_id: Annotated[UUID | None, QueryParameter()] = None,
            from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
            to: Annotated[datetime | None, QueryParameter()] = None,
            limit: Limit = 50,
            cursor: Cursor = None,
        ) -> AuditPage:
            query = select(log).order_by(log.c.at.desc(), log.c.audit_id.desc()).limit(limit + 1)
            for column, value in ((log.c.actor, actor), (log.c.action, action), (log.c.member_id, member_id)):
                if value is not None:
                    query = query.where(column == value)
            if from_ is not None:
                query = query.where(log.c.at >= from_)
            if to is not None:
                query = query.where(log.c.at < to)
            after = decode_cursor(cursor, 2)
            if after is not None:
                at, ident = datetime.fromisoformat(after[0]), UUID(after[1])
                query = query.where((log.c.at < at) | ((log.c.at == at) & (log.c.audit_id < ident)))
            rows = list(await tx.execute(query))
            tz = state.settings.timezone
            items = [
                AuditRecord(
                    r.audit_id,
                    display(r.at, tz),
                    r.actor,
                    r.action,
                    r.member_id,
                    r.request_id,
                    r.before,
                    r.after,
                    r.detail,
                )
                for r in rows[:limit]
            ]
            last = rows[limit - 1] if len(rows) > limit else None
            return AuditPage(items, encode_cursor(last.at.isoformat(), str(last.audit_id)) if last else None)

    return AuditController


def operations_controllers(base: str, tables: CommonTables, jobs_of: JobsFactory) -> list[type[Controller]]:
    """The operators' endpoints every service has: jobs, dead letters, webhooks, audit."""
    return [
        jobs_controller(base, tables, jobs_of),
        dead_letters_controller(base, tables),
        webhooks_controller(base, tables),
        audit_controller(base, tables),
    ]
