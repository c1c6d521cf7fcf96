"""The processes a run measures: the points service started the production way (`loyalty serve points
--workers N`, granian with uvloop), PostgreSQL's server processes, and the CPU time and memory of each (psutil)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from bench.config import PGDATA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_points(database_url: str, workers: int, env_extra: dict[str, str], log_path: Path) -> Service:
    """`loyalty serve points --workers N` on a free loopback port; returns once /readyz answers 200."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOYALTY_POINTS_PORT": str(port),
        "LOYALTY_HOST": "127.0.0.1",
        **env_extra,
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("wb")
    command = [sys.executable, "-m", "loyalty_common.cli", "serve", "points", "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    service = Service(process, port, log)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{service.base_url}/readyz", timeout=2) as resp:  # noqa: S310
                if resp.status == 200 and len(service.workers()) >= workers:
                    return service
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            service.stop()
            raise RuntimeError(f"the points service did not start; see {log_path}")
        time.sleep(0.3)


def postgres_processes(embedded: bool) -> list[psutil.Process]:
    """The PostgreSQL server's postmaster(s): the embedded one, or every postmaster on the machine."""
    if embedded:
        pid_file = PGDATA / "postmaster.pid"
        if pid_file.exists():
            return [psutil.Process(int(pid_file.read_text().split()[0]))]
        return []
    found = []
    for proc in psutil.process_iter(["name", "ppid"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            try:
                parent = psutil.Process(proc.info["ppid"])
                if parent.name() not in ("postgres", "postmaster"):
                    found.append(proc)
            except psutil.NoSuchProcess:
                continue
    return found


def _cpu(proc: psutil.Process, with_exited_children: bool = False) -> float:
    try:
        t = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    total = t.user + t.system
    if with_exited_children:
        total += t.children_user + t.children_system
    return total


@dataclass
class CpuSnapshot:
    at: float
    service_workers: dict[int, float]
    service_main: float
    postgres: float
    machine_busy: float


def snapshot(service: Service, postmasters: list[psutil.Process]) -> CpuSnapshot:
    pg = 0.0
    for postmaster in postmasters:
        pg += _cpu(postmaster, with_exited_children=True)
        with contextlib.suppress(psutil.NoSuchProcess):
            pg += sum(_cpu(child) for child in postmaster.children())
    return CpuSnapshot(
        at=time.perf_counter(),
        service_workers={w.pid: _cpu(w) for w in service.workers()},
        service_main=_cpu(psutil.Process(service.process.pid)),
        postgres=pg,
        machine_busy=_machine_busy(),
    )


def _machine_busy() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def cpu_percent(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU use between two snapshots in percent of one core (200 = both cores of a 2-core machine)."""
    wall = max(1e-6, after.at - before.at)
    workers = {
        f"worker_{i}": 100 * (after.service_workers[pid] - before.service_workers.get(pid, 0.0)) / wall
        for i, pid in enumerate(sorted(after.service_workers))
    }
    service = sum(workers.values()) + 100 * (after.service_main - before.service_main) / wall
    return {
        "service": service,
        **workers,
        "postgres": 100 * (after.postgres - before.postgres) / wall,
        "machine": 100 * (after.machine_busy - before.machine_busy) / wall,
    }


@dataclass
class RssSampler:
    """Samples each service worker's resident memory in the background; keeps the largest seen."""

    service: Service
    interval: float = 0.25
    peak_mb: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for worker in self.service.workers():
                try:
                    rss = worker.memory_info().rss / 2**20
                except psutil.NoSuchProcess:
                    continue
                self.peak_mb[worker.pid] = max(self.peak_mb.get(worker.pid, 0.0), rss)
            self._stop.wait(self.interval)
