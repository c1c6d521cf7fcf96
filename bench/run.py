"""`make bench`: the points service against PostgreSQL's own limit, measured in the same run.

Starts (or connects to) the bench PostgreSQL, seeds a programme, captures the SQL of each operation from the
service's code and turns it into pgbench scripts, starts the service the production way, then for each
scenario: finds the most it can do (closed loop), measures latency at a constant offered rate (open loop),
sweeps the offered rate for the chart, runs pgbench with the same SQL at the same concurrency, and checks the
ledger with `verify`. Writes bench/results/latest.json and a chart, prints a table, and exits non-zero when the
ledger is not clean or a request failed. `BENCH_QUICK=1` makes it short.
"""

from __future__ import annotations

import asyncio
import os
import platform
import resource
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from bench import capture, database, pgbench, report
from bench.config import DATA, BenchConfig, load_config
from bench.loadgen import Job, Result
from bench.operations import API_KEYS, reward_request
from bench.processes import RssSampler, Service, cpu_percent, postgres_processes, snapshot, start_points
from bench.scenarios import SCENARIOS, Plan, plan
from bench.seed import seed
from bench.workload import Zipf


def log(message: str) -> None:
    print(message, flush=True)


def machine(config: BenchConfig, url: str) -> dict[str, Any]:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )  # fmt: skip
    except (OSError, StopIteration):
        model = platform.processor()

    async def pg_version() -> str:
        conn = await asyncpg.connect(url)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    import psutil

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "postgres": asyncio.run(pg_version()),
        "postgres_server": "DATABASE_URL" if config.database_url else "embedded (.data/bench-pg)",
        "durable_commits": config.durable,
        "service_workers": config.workers,
        "concurrency": config.concurrency,
        "members": config.members,
        "zipf_s": config.zipf_s,
        "quick": config.quick,
    }


def service_paths(service: Service) -> set[str]:
    with urllib.request.urlopen(f"{service.base_url}/schema/openapi.json", timeout=10) as resp:  # noqa: S310
        document = msgspec.json.decode(resp.read())
    return set(document.get("paths", {}))


def create_reward(service: Service) -> str:
    req = reward_request(f"bench{int(time.time())}")
    request = urllib.request.Request(  # noqa: S310
        service.base_url + req.path, data=req.body, method=req.method, headers=req.headers()
    )
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
        return str(msgspec.json.decode(resp.read())["reward_id"])


def loadgen(service: Service, config: BenchConfig, job: dict[str, Any]) -> Result:
    spec = Job(host="127.0.0.1", port=service.port, connections=config.concurrency, members=config.members,
               zipf_s=config.zipf_s, **job)  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=msgspec.json.encode(spec),
        capture_output=True,
        timeout=spec.seconds + spec.drain_seconds + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr.decode()[-3000:]}")
    return msgspec.json.decode(done.stdout, type=Result)


async def _pg_stat_reset(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
        return True
    except asyncpg.PostgresError:
        return False
    finally:
        await conn.close()


async def _pg_stat_top(url: str, limit: int = 10) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query, calls, "
            "round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms, "
            "shared_blks_hit + shared_blks_read AS blocks FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY total_exec_time DESC LIMIT $1",
            limit,
        )
        return [{k: (float(v) if k.endswith("_ms") else v) for k, v in dict(r).items()} for r in rows]
    except asyncpg.PostgresError:
        return []
    finally:
        await conn.close()


async def _verify(url: str) -> dict[str, Any]:
    from loyalty_common.db import create_engine
    from loyalty_common.settings import Settings
    from loyalty_points.reports.routes import verify_ledger

    engine = create_engine(Settings(database_url=url), application_name="loyalty-bench-verify", pool_size=1)
    try:
        started = time.perf_counter()
        result = await verify_ledger(engine)
    finally:
        await engine.dispose()
    return {
        "ok": result.ok,
        "counts": result.counts,
        "problems": [msgspec.to_builtins(p) for p in result.problems[:20]],
        "seconds": round(time.perf_counter() - started, 1),
    }


def latency_summary(result: Result) -> dict[str, float]:
    values = result.latencies_ms
    return {
        "p50_ms": report.percentile(values, 50),
        "p90_ms": report.percentile(values, 90),
        "p99_ms": report.percentile(values, 99),
        "max_ms": max(values) if values else float("nan"),
    }


def run_scenario(
    item: Plan,
    config: BenchConfig,
    service: Service,
    db: database.BenchDatabase,
    scripts: dict[str, capture.Script],
    script_dir: Path,
    reward_id: str | None,
    stamp: str,
) -> dict[str, Any]:
    name = item.scenario.name
    tag = f"{name[:3]}{stamp}"
    postmasters = postgres_processes(db.embedded)
    notes = list(item.notes)
    runs: list[Result] = []

    def go(mode: str, rate: float, seconds: float, suffix: str) -> Result:
        result = loadgen(service, config, {"mode": mode, "rate": rate, "seconds": seconds, "mix": item.mix,
                                           "tag": tag + suffix, "reward_id": reward_id})  # fmt: skip
        runs.append(result)
        return result

    stats_on = asyncio.run(_pg_stat_reset(db.url))
    with RssSampler(service) as rss:
        log(f"  warm-up, then closed loop for {config.saturate_seconds:.0f} s with {config.concurrency} connections")
        go("closed", 0, 1.0, "w")
        before = snapshot(service, postmasters)
        saturated = go("closed", 0, config.saturate_seconds, "s")
        cpu_saturated = cpu_percent(before, snapshot(service, postmasters))
        cpu_saturated["loadgen"] = 100 * saturated.cpu_seconds / max(1e-6, saturated.wall_seconds)
        cpu_saturated["others"] = max(0.0, cpu_saturated["machine"] - cpu_saturated["service"]
                                      - cpu_saturated["postgres"] - cpu_saturated["loadgen"])  # fmt: skip
        max_rps = saturated.throughput
        rate = float(config.read_rate) if item.scenario.fixed_rate else config.steady_fraction * max_rps
        log(f"  max {max_rps:,.0f} ops/s; open loop at {rate:,.0f} ops/s for {config.steady_seconds:.0f} s")
        before = snapshot(service, postmasters)
        steady = go("open", rate, config.steady_seconds, "o")
        cpu_steady = cpu_percent(before, snapshot(service, postmasters))
        sweep = []
        for i, fraction in enumerate(config.sweep_fractions):
            offered = max(1.0, fraction * max_rps)
            point = go("open", offered, config.sweep_seconds, f"p{i}")
            sweep.append({"offered": offered, "throughput": point.throughput, **latency_summary(point)})
        log("  sweep: " + ", ".join(f"{p['offered']:,.0f}->{p['throughput']:,.0f} (p99 {p['p99_ms']:,.1f} ms)"
                                    for p in sweep))  # fmt: skip
    top_statements = asyncio.run(_pg_stat_top(db.url)) if stats_on else []

    pgbench_tps: float | None = None
    pgbench_info: dict[str, Any] = {}
    missing = [op for op in item.mix if not scripts[op].replayable]
    if missing:
        notes.append(
            "no pgbench ceiling: the captured SQL of "
            + ", ".join(f"{op} ({scripts[op].note})" for op in missing)
            + " cannot be replayed faithfully"
        )
    else:
        files = {script_dir / f"{op}.sql": weight for op, weight in item.mix.items()}
        log(f"  pgbench: same SQL, same mix, {config.concurrency} clients, {config.pgbench_seconds:.0f} s")
        stats_on = asyncio.run(_pg_stat_reset(db.url))
        before = snapshot(service, postmasters)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = pgbench.run(db.url, files, clients=config.concurrency, seconds=config.pgbench_seconds,
                             members=config.members)  # fmt: skip
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_pgbench = cpu_percent(before, snapshot(service, postmasters))
        pgbench_cpu = (children_after.ru_utime + children_after.ru_stime
                       - children_before.ru_utime - children_before.ru_stime)  # fmt: skip
        pgbench_percent = 100 * pgbench_cpu / max(1e-6, result.seconds)
        pgbench_tps = result.tps
        pgbench_info = {
            "tps": result.tps,
            "latency_avg_ms": result.latency_ms,
            "transactions": result.transactions,
            "failed": result.failed,
            "postgres_cpu_percent": cpu_pgbench["postgres"],
            "postgres_cpu_ms_per_txn": 10 * cpu_pgbench["postgres"] / max(1e-6, result.tps),
            "pgbench_cpu_percent": pgbench_percent,
            "pgbench_cpu_ms_per_txn": 10 * pgbench_percent / max(1e-6, result.tps),
            "others_cpu_percent": max(
                0.0, cpu_pgbench["machine"] - cpu_pgbench["postgres"] - pgbench_percent - cpu_pgbench["service"]
            ),
            "command": result.command,
            "top_statements": asyncio.run(_pg_stat_top(db.url)) if stats_on else [],
        }
        log(f"  pgbench {result.tps:,.0f} tps (avg latency {result.latency_ms:.2f} ms)")

    log("  verify")
    verified = asyncio.run(_verify(db.url))
    errors = sum(r.errors for r in runs)
    error_samples = [s for r in runs for s in r.error_samples][:10]
    lat = latency_summary(steady)
    # What one operation costs in CPU on each path, client included: the ratio a machine with nothing else
    # running would show if both paths were bound by CPU (on a shared machine it is steadier than the ratio).
    service_path = (cpu_saturated["service"] + cpu_saturated["postgres"] + cpu_saturated["loadgen"]) / max(
        1e-6, max_rps
    )
    pgbench_path = (
        (pgbench_info["postgres_cpu_percent"] + pgbench_info["pgbench_cpu_percent"]) / pgbench_info["tps"]
        if pgbench_info
        else None
    )
    return {
        "description": item.scenario.description,
        "mix": item.mix,
        "rps": max_rps,
        "steady_rate": rate,
        "steady_achieved": steady.throughput,
        **lat,
        "errors": errors,
        "error_samples": error_samples,
        "pgbench_tps": pgbench_tps,
        "ratio": (max_rps / pgbench_tps) if pgbench_tps else None,
        "cpu_ms_per_op": {
            "service_path": 10 * service_path,
            "pgbench_path": 10 * pgbench_path if pgbench_path else None,
        },
        "cpu_cost_ratio": (pgbench_path / service_path) if pgbench_path else None,
        "pgbench": pgbench_info,
        "cpu_saturated": cpu_saturated,
        "service_cpu_ms_per_op": 10 * cpu_saturated["service"] / max(1e-6, max_rps),
        "postgres_cpu_ms_per_op": 10 * cpu_saturated["postgres"] / max(1e-6, max_rps),
        "cpu_steady": cpu_steady,
        "rss_mb_peak": [round(v, 1) for _, v in sorted(rss.peak_mb.items())],
        "loadgen_cpu_percent": 100 * saturated.cpu_seconds / max(1e-6, saturated.wall_seconds),
        "loadgen_cpu_percent_steady": 100 * steady.cpu_seconds / max(1e-6, steady.wall_seconds),
        "statuses": dict(sum((Counter(r.statuses) for r in runs), Counter())),
        "sweep": sweep,
        "top_statements": top_statements,
        "verify": verified,
        "verify_ok": verified["ok"],
        "notes": notes,
    }


def targets(scenarios: dict[str, dict[str, Any]], config: BenchConfig) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    if "earn" in scenarios:
        s = scenarios["earn"]
        checks.append({"target": "earn ≥ 0.6 of pgbench", "value": s["ratio"], "met": (s["ratio"] or 0) >= 0.6})
        checks.append({"target": "earn p99 < 50 ms at 70% of max", "value": s["p99_ms"], "met": s["p99_ms"] < 50})
    if "mixed" in scenarios:
        s = scenarios["mixed"]
        checks.append({"target": "mixed ≥ 0.5 of pgbench", "value": s["ratio"], "met": (s["ratio"] or 0) >= 0.5})
    if "read" in scenarios:
        s = scenarios["read"]
        checks.append({"target": f"read p99 < 10 ms at {config.read_rate:,}/s", "value": s["p99_ms"],
                       "met": s["p99_ms"] < 10 and s["steady_achieved"] >= 0.95 * config.read_rate})  # fmt: skip
    peak = max((v for s in scenarios.values() for v in s["rss_mb_peak"]), default=0.0)
    checks.append({"target": "RSS < 200 MB per worker", "value": peak, "met": peak < 200})
    clean = all(s["verify_ok"] for s in scenarios.values())
    checks.append({"target": "verify clean after every scenario", "value": clean, "met": clean})
    return checks


def main() -> int:
    config = load_config()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    started = time.perf_counter()
    log(f"bench: {'quick' if config.quick else 'full'} run, {config.members:,} members, {config.workers} worker(s), "
        f"concurrency {config.concurrency}")  # fmt: skip
    admin = database.start(config)
    service: Service | None = None
    machine_info: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, list[str]] = {}
    round_trips: dict[str, list[int]] = {}
    try:
        log("database: migrations and seed (a cached seed template is cloned when its shape matches)")

        async def do_seed(url: str) -> None:
            counts = await seed(url, config.members, config.lots_per_member, config.hold_share_percent)
            log("  " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))

        t0 = time.perf_counter()
        db, seeded_now = asyncio.run(database.prepare(config, admin, do_seed))
        log(f"  {'seeded' if seeded_now else 'cloned the seed'} in {time.perf_counter() - t0:.0f} s")
        machine_info = machine(config, db.url)
        zipf = Zipf(config.members, config.zipf_s)
        log(f"  zipf s={config.zipf_s}: the hottest member gets {100 * zipf.share_of_top(1):.1f}% of requests, "
            f"the top 100 {100 * zipf.share_of_top(100):.0f}%")  # fmt: skip

        env = {
            "LOYALTY_ENV": "production",
            "LOYALTY_API_KEYS": API_KEYS,
            "LOYALTY_PHONE_KEYS": "bench1:" + "A" * 43 + "=",
            "LOYALTY_BLIND_INDEX_KEY": "B" * 43 + "=",
            "LOYALTY_LOG_LEVEL": config.log_level,
            "LOYALTY_DATA_DIR": str(DATA),
            # A pool smaller than a worker's share of the connections makes SQLAlchemy open and close overflow
            # connections all the time (a new PostgreSQL backend each): bench/README.md shows what that costs.
            "LOYALTY_DB_POOL_SIZE": str(config.concurrency),
        }
        service = start_points(db.url, config.workers, env, config.results / f"service-{stamp}.log")
        log(f"service: loyalty serve points --workers {config.workers} on {service.base_url}")
        paths = service_paths(service)

        plans: list[Plan] = []
        for scenario in SCENARIOS:
            if config.scenarios and scenario.name not in config.scenarios:
                continue
            chosen, notes = plan(scenario, paths)
            if chosen is None:
                skipped[scenario.name] = notes
                log(f"scenario {scenario.name} skipped: {'; '.join(notes)}")
            else:
                plans.append(chosen)
        operations = sorted({op for p in plans for op in p.mix})
        reward_id = create_reward(service) if "redemption" in operations else None

        log(f"capture: the SQL of {', '.join(operations)} from the service's code")
        captures = asyncio.run(capture.capture(admin, operations))
        script_dir = config.results / "scripts"
        script_dir.mkdir(parents=True, exist_ok=True)
        scripts = {op: capture.render(c, config.zipf_s) for op, c in captures.items()}
        for op, script in scripts.items():
            (script_dir / f"{op}.sql").write_text(script.text)
            round_trips[op] = [len(t) for t in captures[op].transactions]
            log(f"  {op}: {' + '.join(str(n) for n in round_trips[op])} statements (BEGIN and COMMIT included)"
                + ("" if script.replayable else f"; not replayable: {script.note}"))  # fmt: skip

        for item in plans:
            log(f"scenario {item.scenario.name}: {item.scenario.description}; mix {item.mix}")
            for note in item.notes:
                log(f"  note: {note}")
            results[item.scenario.name] = run_scenario(item, config, service, db, scripts, script_dir, reward_id, stamp)
            s = results[item.scenario.name]
            log(f"  errors {s['errors']}, verify {'clean' if s['verify_ok'] else 'FAILED'}")
            for sample in s["error_samples"][:3]:
                log(f"    {sample}")
    finally:
        if service is not None:
            service.stop()
        database.stop(config)

    verify_ok = all(s["verify_ok"] for s in results.values()) and bool(results)
    errors = sum(s["errors"] for s in results.values())
    checks = targets(results, config)
    run = {
        "machine": machine_info,
        "started": stamp,
        "seconds": round(time.perf_counter() - started, 1),
        "round_trips": round_trips,
        "scenarios": results,
        "skipped": skipped,
        "targets": checks,
        "verify_ok": verify_ok,
        "errors": errors,
    }
    latest = report.write_json(config.results, run, stamp)
    png = report.chart(config.results / "latest.png", results,
                       f"loyalty points service vs pgbench — {config.workers} workers, {config.concurrency} "
                       f"connections, {config.members:,} members, {run['machine']['cpu']}")  # fmt: skip
    log("")
    log(report.table(results))
    log("")
    for name, notes in skipped.items():
        log(f"skipped {name}: {'; '.join(notes)}")
    for check in checks:
        value = check["value"]
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        log(f"target {'met   ' if check['met'] else 'MISSED'} {check['target']}: {shown}")
    log(f"results: {latest}" + (f", chart: {png}" if png else ""))
    failed = not verify_ok or errors > 0
    if failed:
        reasons = (["the ledger is not clean"] if not verify_ok else []) + (
            [f"{errors} request(s) failed"] if errors else []
        )
        log(f"FAILED: {'; '.join(reasons)}")
    log(report.summary_line(results, verify_ok))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
