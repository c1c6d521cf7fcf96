"""`loyalty`: the operators' and developers' command line.

loyalty run                 everything for development: database, migrations, both services, scheduler
loyalty serve points        one service, the production way (granian)
loyalty scheduler           the scheduler process
loyalty migrate [--check]   apply (or check) both services' migrations
loyalty keys create ...     make an API key (stored hashed) and print it once
loyalty verify              check every ledger invariant; exit 1 on any problem
loyalty jobs run JOB        run a job now, with a progress bar (--as-of for backfills)
loyalty db start|stop|url   the embedded development database
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from loyalty_common import devdb, migrations, services
from loyalty_common.audit import Audit
from loyalty_common.clock import SystemClock
from loyalty_common.settings import SCOPES, ConfigError, Settings, load_dev_secrets, settings_from_env

app = typer.Typer(help="Loyalty points and membership backend", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="API keys", no_args_is_help=True)
db_app = typer.Typer(help="The embedded development database", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled jobs", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
console = Console(stderr=True)


def _settings() -> Settings:
    try:
        return settings_from_env()
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _database_url(settings: Settings) -> str:
    """DATABASE_URL, or (development only) the embedded server in the data folder."""
    if settings.database_url:
        return settings.database_url
    if settings.is_production:
        console.print("[red]DATABASE_URL is required in production[/red]")
        raise typer.Exit(2)
    return devdb.resolve_run_database(settings.data_dir, None)


def _with_url(settings: Settings, url: str) -> Settings:
    return msgspec.structs.replace(settings, database_url=url)


@app.command()
def migrate(
    check: Annotated[bool, typer.Option(help="Only check that models and migrations agree")] = False,
) -> None:
    """Apply both services' migrations (members first, then points)."""
    settings = _settings()
    url = _database_url(settings)
    if check:
        migrations.check(url)
        console.print("models and migrations agree")
    else:
        migrations.upgrade(url)
        console.print("migrations applied")


def _granian(service: str, settings: Settings, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(services.port(settings, service)),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--no-ws",
        "--log-level",
        "warning",
        "--workers-kill-timeout",
        "30",
        services.app_target(service),
    ]


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="points or members")],
    workers: Annotated[int | None, typer.Option(help="Worker processes (default LOYALTY_WORKERS)")] = None,
) -> None:
    """Serve one service with granian (production ASGI server), in the foreground."""
    if service not in services.SERVICE_NAMES:
        raise typer.BadParameter("points or members")
    settings = _settings()
    env = {**os.environ, "DATABASE_URL": _database_url(settings)}
    os.execvpe(sys.executable, _granian(service, settings, workers or settings.workers), env)  # noqa: S606


@app.command()
def scheduler() -> None:
    """Run the scheduler process in the foreground."""
    from loyalty_common.logs import bind_service, configure_logging
    from loyalty_common.scheduler import main as scheduler_main

    settings = _settings()
    settings = _with_url(settings, _database_url(settings))
    configure_logging(settings.log_level, settings.log_format, settings.log_file)
    bind_service("scheduler")
    scheduler_main(settings)


@app.command()
def run() -> None:
    """Start everything for development: the database (embedded unless DATABASE_URL is set), migrations, the
    points service, the members service and the scheduler. Ctrl-C stops them all."""
    data_dir = Path(os.environ.get("LOYALTY_DATA_DIR", ".data")).resolve()
    first_run = not (data_dir / "dev-secrets.json").exists()
    settings = _settings()
    started_embedded = settings.database_url is None
    url = _database_url(settings)
    migrations.upgrade(url)
    env = {**os.environ, "DATABASE_URL": url, "LOYALTY_DATA_DIR": str(settings.data_dir)}
    _print_banner(settings, url, first_run=first_run)
    commands = {
        "points": _granian("points", settings, settings.workers),
        "members": _granian("members", settings, settings.workers),
        "scheduler": [sys.executable, "-m", "loyalty_common.cli", "scheduler"],
    }
    children = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands.items()}  # noqa: S603
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    console.print(f"[red]{name} exited with {child.returncode}; stopping the others[/red]")
                    exit_code = 1
                    stopping = True
            time.sleep(0.2)
    finally:
        console.print("stopping…")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 35
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if started_embedded:
            devdb.stop_embedded(settings.data_dir / "pg")
        console.print("stopped")
    raise typer.Exit(exit_code)


def _print_banner(settings: Settings, url: str, *, first_run: bool = False) -> None:
    table = Table(title="loyalty is starting", show_header=False)
    table.add_row("points", f"http://{settings.host}:{settings.points_port}  (OpenAPI: /schema/openapi.json)")
    table.add_row("members", f"http://{settings.host}:{settings.members_port}")
    table.add_row(
        "database",
        "embedded PostgreSQL in " + str(settings.data_dir / "pg") if settings.database_url is None else "DATABASE_URL",
    )
    console.print(table)
    if settings.env != "production" and not os.environ.get("LOYALTY_API_KEYS"):
        secrets, _ = load_dev_secrets(settings.data_dir)
        console.print(
            ("Made" if first_run else "Using") + f" development secrets in {settings.data_dir / 'dev-secrets.json'} "
            "[bold yellow](for development only: never use them in production)[/bold yellow]"
        )
        for spec in secrets.api_keys.split(","):
            name, key, scope = spec.split(":")
            console.print(f"  API key [bold]{name}[/bold] ({scope}): Authorization: Bearer {key}")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for; shown in audit records and logs")],
    scope: Annotated[list[str], typer.Option(help="member, earn or admin (repeatable)")],
    service: Annotated[str, typer.Option(help="points, members or all")] = "all",
) -> None:
    """Make an API key, store only its SHA-256, and print the key once."""
    from loyalty_common.auth import new_key, store_key
    from loyalty_common.db import create_engine, unit_of_work

    unknown = set(scope) - set(SCOPES)
    if unknown:
        raise typer.BadParameter(f"unknown scope(s): {', '.join(sorted(unknown))}")
    settings = _settings()
    settings = _with_url(settings, _database_url(settings))
    key = new_key()
    targets = services.SERVICE_NAMES if service == "all" else (service,)

    async def store() -> None:
        engine = create_engine(settings, application_name="loyalty-cli", pool_size=1)
        try:
            async with unit_of_work(engine) as tx:
                for target in targets:
                    tables = services.common_tables(target)
                    await store_key(tx, tables, name=name, key=key, scopes=scope, clock=SystemClock())
                    await Audit(tables, SystemClock()).record(
                        tx, None, "api_key.create", actor="cli", detail=f"{name}: {'+'.join(sorted(scope))}"
                    )
        finally:
            await engine.dispose()

    asyncio.run(store())
    console.print(f"key {name!r} ({'+'.join(sorted(scope))}) for {', '.join(targets)}; shown only now:")
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Option(help="The key's name")]) -> None:
    """Revoke a stored key in both services (takes effect within 30 seconds)."""
    from sqlalchemy import update

    from loyalty_common.db import create_engine, unit_of_work

    settings = _settings()
    settings = _with_url(settings, _database_url(settings))

    async def revoke() -> int:
        engine = create_engine(settings, application_name="loyalty-cli", pool_size=1)
        count = 0
        try:
            async with unit_of_work(engine) as tx:
                for target in services.SERVICE_NAMES:
                    keys = services.common_tables(target).api_keys
                    result = await tx.execute(
                        update(keys)
                        .where(keys.c.name == name, keys.c.revoked_at.is_(None))
                        .values(revoked_at=SystemClock().now())
                    )
                    count += int(result.rowcount or 0)
                    await Audit(services.common_tables(target), SystemClock()).record(
                        tx, None, "api_key.revoke", actor="cli", detail=name
                    )
        finally:
            await engine.dispose()
        return count

    console.print(f"revoked {asyncio.run(revoke())} stored key(s) named {name!r}")


@app.command()
def verify() -> None:
    """Check every ledger invariant over the whole ledger; print what is wrong and exit 1 if anything is."""
    from loyalty_common.db import create_engine
    from loyalty_points.reports.routes import verify_ledger

    settings = _settings()
    settings = _with_url(settings, _database_url(settings))

    async def check() -> int:
        engine = create_engine(settings, application_name="loyalty-verify", pool_size=1)
        try:
            report = await verify_ledger(engine)
        finally:
            await engine.dispose()
        counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
        t = report.totals
        console.print(f"checked {counts}")
        console.print(
            f"issued {t.issued}, adjusted {t.adjusted}, redeemed {t.redeemed}, offset {t.offset}, expired "
            f"{t.expired}, clawed back {t.clawed_back}; outstanding {t.outstanding} (debt {t.debt})"
        )
        for problem in report.problems:
            member = f" member {problem.member_id}" if problem.member_id else ""
            console.print(f"[red]PROBLEM[/red] {problem.check}{member}: {problem.detail}")
        if report.ok:
            console.print("[green]ledger OK[/green]")
            return 0
        console.print(f"[red]{len(report.problems)} problem(s)[/red]")
        return 1

    raise typer.Exit(asyncio.run(check()))


@jobs_app.command("run")
def jobs_run(
    job: Annotated[str, typer.Argument(help="expire, release-holds, settle-leaderboards, review-tiers, ...")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="RFC 3339 instant (default: now)")] = None,
) -> None:
    """Run one job now, as of an instant, with a progress bar and a summary."""
    from loyalty_common.db import create_engine
    from loyalty_common.jobs import run_job

    settings = _settings()
    settings = _with_url(settings, _database_url(settings))
    clock = SystemClock()
    when = datetime.fromisoformat(as_of) if as_of else clock.now()
    if when.tzinfo is None:
        raise typer.BadParameter("--as-of needs a UTC offset")

    async def go() -> int:
        engine = create_engine(settings, application_name="loyalty-cli", pool_size=4)
        try:
            for service in services.SERVICE_NAMES:
                registry = services.jobs(service, settings, clock, engine)
                if job not in registry:
                    continue
                with Progress(
                    TextColumn(f"{service}:{job}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                ) as bar:
                    task = bar.add_task(job, total=None)

                    def progress(done: int, total: int | None, task: TaskID = task) -> None:
                        bar.update(task, completed=done, total=total)

                    run_ = await run_job(
                        engine,
                        services.common_tables(service),
                        registry[job],
                        when,
                        clock=clock,
                        trigger="cli",
                        progress=progress,
                    )
                console.print(f"{service}:{job} as of {when.isoformat()}: {run_.outcome}")
                for key, value in run_.counts.items():
                    console.print(f"  {key}: {value}")
                return 0
            console.print(f"[red]no job named {job!r}[/red]")
            return 2
        finally:
            await engine.dispose()

    raise typer.Exit(asyncio.run(go()))


@db_app.command("start")
def db_start() -> None:
    """Start the embedded development database (in LOYALTY_DATA_DIR/pg) and print its URL."""
    typer.echo(devdb.resolve_run_database(_settings().data_dir, None))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded development database."""
    devdb.stop_embedded(_settings().data_dir / "pg")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL `make run` uses."""
    typer.echo(_database_url(_settings()))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
