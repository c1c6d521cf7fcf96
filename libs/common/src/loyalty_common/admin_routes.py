"""Operators' endpoints every service has, built once: job runs and the events dead-letter queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.auth import requires
from loyalty_common.clock import Clock
from loyalty_common.db import unit_of_work
from loyalty_common.errors import ResourceNotFound
from loyalty_common.eventbus import replay_dead_letter
from loyalty_common.http import problems
from loyalty_common.jobs import Job, JobRun, recent_runs, run_job
from loyalty_common.pagination import Cursor, Limit, decode_cursor, encode_cursor
from loyalty_common.settings import Settings
from loyalty_common.tables import CommonTables
from loyalty_common.timeutil import display, display_opt


class JobRunRequest(msgspec.Struct, forbid_unknown_fields=True):
    as_of: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class JobRunOut(msgspec.Struct):
    run_id: str
    job: str
    trigger: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    counts: dict[str, int]
    error: str | None


class JobRunPage(msgspec.Struct):
    items: list[JobRunOut]
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

    def out(run: JobRun, settings: Settings) -> JobRunOut:
        tz = settings.timezone
        return JobRunOut(
            run_id=str(run.run_id),
            job=run.job,
            trigger=run.trigger,
            as_of=display(run.as_of, tz),
            started_at=display(run.started_at, tz),
            finished_at=display_opt(run.finished_at, tz),
            outcome=run.outcome,
            counts=run.counts,
            error=run.error,
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
        ) -> JobRunOut:
            jobs = jobs_of(state)
            if job not in jobs:
                raise ResourceNotFound(f"No job {job!r}; jobs: {', '.join(sorted(jobs))}")
            clock: Clock = state.clock
            as_of = (data.as_of if data is not None and data.as_of is not None else None) or clock.now()
            actor = request.scope.get("state", {}).get("principal_name", "admin")
            result = await run_job(state.engine, tables, jobs[job], as_of, clock=clock, trigger=f"api:{actor}")
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
        async def replay(self, dead_letter_id: FromPath[str], state: State) -> Replayed:
            try:
                ident = UUID(dead_letter_id)
            except ValueError:
                raise ResourceNotFound("No such dead letter") from None
            async with unit_of_work(state.engine) as tx:
                done = await replay_dead_letter(tx, tables, ident, state.clock)
            if not done:
                raise ResourceNotFound("No such dead letter waiting for a replay")
            return Replayed(dead_letter_id=ident, replayed=True)

    return DeadLettersController
