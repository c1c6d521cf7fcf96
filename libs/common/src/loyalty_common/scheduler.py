"""The scheduler process: runs both services' jobs on their schedules (APScheduler 3, business timezone).

Safe with several replicas: each run takes its job's advisory lock and a busy job is skipped. Runs missed
while no scheduler was up are caught up once at start (coalesced), not replayed one by one.
"""

from __future__ import annotations

import asyncio
import signal

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common import services
from loyalty_common.clock import Clock, SystemClock
from loyalty_common.db import create_engine
from loyalty_common.jobs import Job, JobBusy, last_success, mark_abandoned_runs, run_job
from loyalty_common.settings import Settings

log = structlog.get_logger("loyalty.scheduler")


_running: set[asyncio.Task[None]] = set()


async def _fire(engine: AsyncEngine, service: str, job: Job, clock: Clock, trigger: str) -> None:
    task = asyncio.current_task()
    if task is not None:
        _running.add(task)
        task.add_done_callback(_running.discard)
    try:
        await run_job(
            engine,
            services.common_tables(service),
            job,
            clock.now(),
            clock=clock,
            trigger=trigger,
            wait=False,
        )
    except JobBusy:
        log.info("job_skipped_busy", service=service, job=job.name)
    except Exception:  # noqa: S110 -- run_job recorded the failure in job_runs and logged it; keep scheduling
        pass


async def run_scheduler(settings: Settings, clock: Clock | None = None, stop: asyncio.Event | None = None) -> None:
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    engine = create_engine(settings, application_name="loyalty-scheduler", pool_size=4)
    scheduler = AsyncIOScheduler(timezone=settings.timezone)
    catch_up: list[tuple[str, Job]] = []
    for service in services.SERVICE_NAMES:
        for job in services.jobs(service, settings, clock, engine).values():
            if job.schedule is None:
                continue
            await mark_abandoned_runs(engine, services.common_tables(service), job, clock)
            trigger = CronTrigger.from_crontab(job.schedule, timezone=settings.timezone)
            scheduler.add_job(
                _fire,
                trigger,
                args=[engine, service, job, clock, "schedule"],
                id=f"{service}:{job.name}",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )
            last = await last_success(engine, services.common_tables(service), job.name)
            missed = last is None or (trigger.get_next_fire_time(None, last) or clock.now()) <= clock.now()
            if missed:
                catch_up.append((service, job))
            log.info("job_scheduled", service=service, job=job.name, schedule=job.schedule, catch_up=missed)
    scheduler.start()
    for service, job in catch_up:
        asyncio.create_task(_fire(engine, service, job, clock, "catch-up"))  # noqa: RUF006
    log.info("scheduler_started", jobs=len(scheduler.get_jobs()))
    await stop.wait()
    scheduler.shutdown(wait=False)
    if _running:
        # Let runs in progress finish their current work; they are resumable if they cannot.
        await asyncio.wait(list(_running), timeout=30)
    await engine.dispose()
    log.info("scheduler_stopped")


def main(settings: Settings) -> None:
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_scheduler(settings, stop=stop)

    asyncio.run(runner())
