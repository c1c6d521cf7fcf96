"""Runs pgbench with the captured scripts at the service's concurrency: the database's own ceiling for the same
work on this machine. Uses the embedded server's pgbench, prepared statements (as asyncpg does) and no vacuum."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from loyalty_common.db import libpq_url
from loyalty_common.devdb import pg_bin


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    latency_ms: float
    transactions: int
    failed: int
    seconds: float
    command: str
    output: str


def run(
    url: str,
    scripts: dict[Path, int],
    *,
    clients: int,
    seconds: float,
    members: int,
    threads: int = 2,
) -> PgbenchResult:
    """`scripts` maps each script file to its weight. Raises if pgbench aborted (a script error)."""
    command = [
        pg_bin("pgbench"),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={min(threads, clients)}",
        f"--time={max(1, round(seconds))}",
        f"--define=members={members}",
        *(arg for path, weight in scripts.items() for arg in ("--file", f"{path}@{weight}")),
        libpq_url(url),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{output[-3000:]}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    if tps is None:
        raise RuntimeError(f"could not read pgbench's output:\n{output[-3000:]}")
    return PgbenchResult(
        tps=float(tps.group(1)),
        latency_ms=float(latency.group(1)) if latency else 0.0,
        transactions=int(processed.group(1)) if processed else 0,
        failed=int(failed.group(1)) if failed else 0,
        seconds=time.perf_counter() - started,
        command=" ".join(command[:-1]) + " <bench database>",
        output=output,
    )
