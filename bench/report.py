"""What a run shows: the table printed at the end, `bench/results/latest.json` (and a timestamped copy), and the
chart of throughput and p99 latency against the offered rate, with pgbench's rate for the same SQL."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _grid(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table(scenarios: dict[str, dict[str, Any]]) -> str:
    """Two tables: throughput and latency, then where the CPU went (percent of one core; 200 = two cores)."""
    speed = [["scenario", "max ops/s", "pgbench tps", "ratio", "CPU cost ratio", "latency at ops/s", "p50 ms",
              "p90 ms", "p99 ms", "max ms", "errors"]]  # fmt: skip
    cpu = [["scenario", "service CPU %", "per worker %", "RSS/worker MB", "service ms/op", "PG CPU %", "PG ms/op",
            "loadgen CPU %", "others CPU %", "pgbench: PG CPU %", "PG ms/txn", "others %"]]  # fmt: skip
    for name, s in scenarios.items():
        c, p = s["cpu_saturated"], s["pgbench"]
        speed.append(
            [name, _fmt(s["rps"], 0), _fmt(s["pgbench_tps"], 0), _fmt(s["ratio"], 2), _fmt(s["cpu_cost_ratio"], 2),
             _fmt(s["steady_rate"], 0),
             _fmt(s["p50_ms"], 2), _fmt(s["p90_ms"], 2), _fmt(s["p99_ms"], 2), _fmt(s["max_ms"], 1),
             _fmt(s["errors"])]
        )  # fmt: skip
        cpu.append(
            [name, _fmt(c["service"], 0), "/".join(_fmt(v, 0) for k, v in c.items() if k.startswith("worker_")),
             "/".join(_fmt(v, 0) for v in s["rss_mb_peak"]), _fmt(s["service_cpu_ms_per_op"], 2),
             _fmt(c["postgres"], 0), _fmt(s["postgres_cpu_ms_per_op"], 2), _fmt(c.get("loadgen"), 0),
             _fmt(c.get("others"), 0), _fmt(p.get("postgres_cpu_percent"), 0),
             _fmt(p.get("postgres_cpu_ms_per_txn"), 2), _fmt(p.get("others_cpu_percent"), 0)]
        )  # fmt: skip
    return _grid(speed) + "\n\n" + _grid(cpu)


def summary_line(scenarios: dict[str, dict[str, Any]], verify_ok: bool) -> str:
    parts = [f"{name} {s['ratio']:.2f}" if s.get("ratio") is not None else f"{name} -" for name, s in scenarios.items()]
    return f"service/pgbench: {', '.join(parts)}; verify {'clean' if verify_ok else 'FAILED'}"


def _finite(value: Any) -> Any:
    """JSON has no NaN: a measurement that could not be made is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(results: Path, run: dict[str, Any], stamp: str) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(run), indent=2, default=str)
    (results / f"run-{stamp}.json").write_text(text)
    latest = results / "latest.json"
    latest.write_text(text)
    return latest


def chart(path: Path, scenarios: dict[str, dict[str, Any]], title: str) -> Path | None:
    """Throughput and p99 against offered rate for each scenario's sweep; pgbench's rate as a dashed line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    swept = {name: s for name, s in scenarios.items() if s.get("sweep")}
    if not swept:
        return None
    fig, axes = plt.subplots(2, len(swept), figsize=(4.2 * len(swept), 7), squeeze=False)
    for col, (name, s) in enumerate(swept.items()):
        offered = [p["offered"] for p in s["sweep"]]
        top, bottom = axes[0][col], axes[1][col]
        top.plot(offered, [p["throughput"] for p in s["sweep"]], "o-", label="service")
        top.plot(offered, offered, ":", color="grey", label="offered")
        if s.get("pgbench_tps"):
            top.axhline(s["pgbench_tps"], linestyle="--", color="tab:red", label="pgbench, same SQL")
        top.set_title(f"{name}")
        top.set_xlabel("offered ops/s")
        top.set_ylabel("achieved ops/s")
        top.legend(fontsize=7)
        bottom.plot(offered, [p["p99_ms"] for p in s["sweep"]], "o-", color="tab:orange")
        bottom.set_yscale("log")
        bottom.set_xlabel("offered ops/s")
        bottom.set_ylabel("p99 latency, ms (log)")
        bottom.grid(True, which="both", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
