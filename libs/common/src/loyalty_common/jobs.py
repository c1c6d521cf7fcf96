"""Scheduled jobs: one definition per job, run the same way by the scheduler, the admin endpoints and the CLI.

A run takes a PostgreSQL advisory lock named after the job, so several scheduler replicas never run one job at
once; each job does its work in short transactions and is idempotent, so a run killed half-way leaves a
consistent ledger and the next run finishes the rest. Every run is recorded in the service's `job_runs`.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import msgspec
import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.clock import Clock
from loyalty_common.errors import describe_failure
from loyalty_common.metrics import JOB_RUNS, JOB_SECONDS
from loyalty_common.tables import CommonTables

log = structlog.get_logger("loyalty.jobs")


class Progress(Protocol):
    def __call__(self, done: int, total: int | None) -> None: ...


def no_progress(done: int, total: int | None) -> None:
    return None


JobBody = Callable[[datetime, Progress], Awaitable[dict[str, int]]]


@dataclass(frozen=True)
class Job:
    """A job of one service. `schedule` is a cron expression in business time (None: on demand only)."""

    service: str
    name: str
    description: str
    body: JobBody
    schedule: str | None = None


class JobRun(msgspec.Struct):
    run_id: uuid.UUID
    job: str
    trigger: str
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    counts: dict[str, int]
    error: str | None


class JobBusy(Exception):
    """Another run of the job holds its lock (the scheduler skips; callers that wait never see this)."""


def _lock_key(job: Job) -> str:
    return f"job:{job.service}:{job.name}"


async def run_job(
    engine: AsyncEngine,
    tables: CommonTables,
    job: Job,
    as_of: datetime,
    *,
    clock: Clock,
    trigger: str,
    wait: bool = True,
    progress: Progress = no_progress,
) -> JobRun:
    runs = tables.job_runs
    async with engine.connect() as lock_conn:
        key = func.hashtextextended(_lock_key(job), 0)
        if wait:
            await lock_conn.execute(select(func.pg_advisory_lock(key)))
        else:
            got = (await lock_conn.execute(select(func.pg_try_advisory_lock(key)))).scalar_one()
            if not got:
                raise JobBusy(job.name)
        await lock_conn.commit()
        try:
            run_id = uuid.uuid4()
            started = clock.now()
            async with engine.begin() as tx:
                await tx.execute(
                    insert(runs).values(
                        run_id=run_id,
                        job=job.name,
                        trigger=trigger,
                        as_of=as_of,
                        started_at=started,
                        outcome="running",
                        counts={},
                        host=socket.gethostname(),
                    )
                )
            try:
                with JOB_SECONDS.labels(job.service, job.name).time():
                    counts = await job.body(as_of, progress)
            except Exception as exc:
                JOB_RUNS.labels(job.service, job.name, "failed").inc()
                failure = describe_failure(exc)
                async with engine.begin() as tx:
                    await tx.execute(
                        update(runs)
                        .where(runs.c.run_id == run_id)
                        .values(
                            finished_at=clock.now(),
                            outcome="failed",
                            error=failure["error_type"],
                        )
                    )
                log.error("job_failed", job=job.name, run_id=str(run_id), **failure)
                raise
            JOB_RUNS.labels(job.service, job.name, "succeeded").inc()
            finished = clock.now()
            async with engine.begin() as tx:
                await tx.execute(
                    update(runs)
                    .where(runs.c.run_id == run_id)
                    .values(finished_at=finished, outcome="succeeded", counts=counts)
                )
            log.info(
                "job_finished",
                job=job.name,
                run_id=str(run_id),
                trigger=trigger,
                as_of=as_of.isoformat(),
                seconds=round((finished - started).total_seconds(), 3),
                **counts,
            )
            return JobRun(run_id, job.name, trigger, as_of, started, finished, "succeeded", counts, None)
        finally:
            await lock_conn.execute(select(func.pg_advisory_unlock(key)))
            await lock_conn.commit()


async def last_success(engine: AsyncEngine, tables: CommonTables, job: str) -> datetime | None:
    runs = tables.job_runs
    async with engine.connect() as conn:
        value: datetime | None = (
            await conn.execute(
                select(func.max(runs.c.started_at)).where(runs.c.job == job, runs.c.outcome == "succeeded")
            )
        ).scalar_one()
    return value


async def recent_runs(
    conn: Any, tables: CommonTables, *, job: str | None, before: datetime | None, limit: int
) -> list[JobRun]:
    runs = tables.job_runs
    query = select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
    if job is not None:
        query = query.where(runs.c.job == job)
    if before is not None:
        query = query.where(runs.c.started_at < before)
    rows = await conn.execute(query)
    return [
        JobRun(
            r.run_id,
            r.job,
            r.trigger,
            r.as_of,
            r.started_at,
            r.finished_at,
            r.outcome,
            dict(r.counts),
            r.error,
        )
        for r in rows
    ]


async def mark_abandoned_runs(engine: AsyncEngine, tables: CommonTables, job: Job, clock: Clock) -> int:
    """Runs left `running` by a process that died are marked abandoned (their work is idempotent, and the next
    run finishes it). Done only while holding the job's lock, so a run in progress elsewhere is never touched."""
    runs = tables.job_runs
    key = func.hashtextextended(_lock_key(job), 0)
    async with engine.connect() as conn:
        if not (await conn.execute(select(func.pg_try_advisory_lock(key)))).scalar_one():
            await conn.commit()
            return 0
        try:
            result = await conn.execute(
                update(runs)
                .where(runs.c.job == job.name, runs.c.outcome == "running")
                .values(outcome="abandoned", finished_at=clock.now())
            )
            await conn.commit()
            return int(result.rowcount or 0)
        finally:
            await conn.execute(select(func.pg_advisory_unlock(key)))
            await conn.commit()
