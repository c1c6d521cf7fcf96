from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter

from loyalty_common.auth import requires
from loyalty_common.errors import ResourceNotFound
from loyalty_common.http import problems
from loyalty_common.jobs import JobRun, recent_runs, run_job
from loyalty_common.pagination import Cursor, Limit, decode_cursor, encode_cursor
from loyalty_common.timeutil import display, display_opt
from loyalty_points import schema
from loyalty_points.context import Ctx
from loyalty_points.jobs import points_jobs


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


def run_out(run: JobRun, ctx: Ctx) -> JobRunOut:
    return JobRunOut(
        run_id=str(run.run_id),
        job=run.job,
        trigger=run.trigger,
        as_of=display(run.as_of, ctx.tz),
        started_at=display(run.started_at, ctx.tz),
        finished_at=display_opt(run.finished_at, ctx.tz),
        outcome=run.outcome,
        counts=run.counts,
        error=run.error,
    )


class JobsController(Controller):
    path = "/v1/admin/points/jobs"
    tags = ["admin", "jobs"]
    guards = [requires("admin")]

    @post(
        "/{job:str}/run",
        status_code=201,
        summary="Run a job now (the same code the scheduler runs)",
        responses=problems(404),
    )
    async def run(
        self,
        request: Request[Any, Any, Any],
        job: FromPath[str],
        state: State,
        ctx: Ctx,
        data: JSONBody[JobRunRequest | None] = None,
    ) -> JobRunOut:
        jobs = points_jobs(ctx, state.engine)
        if job not in jobs:
            raise ResourceNotFound(f"No job {job!r}; jobs: {', '.join(sorted(jobs))}")
        as_of = (data.as_of if data and data.as_of else None) or ctx.clock.now()
        actor = request.scope.get("state", {}).get("principal_name", "admin")
        result = await run_job(state.engine, schema.common, jobs[job], as_of, clock=ctx.clock, trigger=f"api:{actor}")
        return run_out(result, ctx)

    @get("/runs", summary="Job runs, newest first", responses=problems())
    async def runs(
        self,
        state: State,
        ctx: Ctx,
        job: Annotated[str | None, QueryParameter(max_length=64)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> JobRunPage:
        after = decode_cursor(cursor, 1)
        before = datetime.fromisoformat(after[0]) if after else None
        async with state.engine.connect() as conn:
            rows = await recent_runs(conn, schema.common, job=job, before=before, limit=limit + 1)
        items = [run_out(r, ctx) for r in rows[:limit]]
        next_cursor = encode_cursor(rows[limit - 1].started_at.isoformat()) if len(rows) > limit else None
        return JobRunPage(items=items, next_cursor=next_cursor)
