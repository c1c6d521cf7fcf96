"""The benchmark's knobs, read once from the environment: quick or full mode, seed size, workers, concurrency,
run lengths. Every other bench module takes a `BenchConfig` instead of reading the environment itself."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / ".data" / "bench"
PGDATA = ROOT / ".data" / "bench-pg"

SEED_VERSION = 3
"""Bump when the seed's shape changes: cached seed databases of another version are rebuilt."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class BenchConfig:
    quick: bool
    members: int
    lots_per_member: int
    hold_share_percent: int
    zipf_s: float
    workers: int
    concurrency: int
    saturate_seconds: float
    steady_seconds: float
    sweep_seconds: float
    sweep_fractions: tuple[float, ...]
    steady_fraction: float
    read_rate: int
    pgbench_seconds: float
    durable: bool
    database_url: str | None
    scenarios: tuple[str, ...] | None
    log_level: str
    keep_seed: bool
    results: Path = field(default=RESULTS)

    @property
    def seed_key(self) -> str:
        return f"v{SEED_VERSION}_m{self.members}_l{self.lots_per_member}_h{self.hold_share_percent}"


def load_config() -> BenchConfig:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false", "no")
    scenarios = os.environ.get("BENCH_SCENARIOS", "").strip()
    return BenchConfig(
        quick=quick,
        members=_int("BENCH_MEMBERS", 10_000 if quick else 100_000),
        lots_per_member=_int("BENCH_LOTS", 10),
        hold_share_percent=_int("BENCH_HOLD_PERCENT", 5),
        zipf_s=_float("BENCH_ZIPF_S", 1.01),
        workers=_int("BENCH_WORKERS", os.cpu_count() or 2),
        concurrency=_int("BENCH_CONCURRENCY", 16),
        saturate_seconds=_float("BENCH_SATURATE_SECONDS", 5 if quick else 15),
        steady_seconds=_float("BENCH_STEADY_SECONDS", 6 if quick else 20),
        sweep_seconds=_float("BENCH_SWEEP_SECONDS", 3 if quick else 8),
        sweep_fractions=(0.25, 0.5, 0.75, 1.0, 1.25) if not quick else (0.25, 0.5, 0.75, 1.0),
        steady_fraction=0.7,
        read_rate=_int("BENCH_READ_RATE", 1000),
        pgbench_seconds=_float("BENCH_PGBENCH_SECONDS", 5 if quick else 15),
        durable=os.environ.get("BENCH_DURABLE", "1") not in ("0", "false", "no"),
        database_url=os.environ.get("DATABASE_URL") or None,
        scenarios=tuple(s.strip() for s in scenarios.split(",") if s.strip()) or None,
        log_level=os.environ.get("BENCH_LOG_LEVEL", "info"),
        keep_seed=os.environ.get("BENCH_RESEED", "") in ("", "0"),
    )
