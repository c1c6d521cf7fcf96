"""An open-loop HTTP/1.1 load generator (uvloop, raw asyncio streams, keep-alive connections; no HTTP library).

`open` mode schedules operations at a constant rate, whatever the server does, and measures each one's latency
from the instant it was *meant* to start, so queueing behind a slow server counts (no coordinated omission).
`closed` mode keeps every connection busy, to find the most the service can do. Both are bounded in operations
and in time and stop by themselves. Run as `python -m bench.loadgen` with a JSON job on stdin; the result is
JSON on stdout, including this process's own CPU time, so it can be seen not to be the bottleneck.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from typing import Any

import msgspec
import uvloop

from bench.operations import OPERATIONS, Context, Request
from bench.workload import Zipf, member_uuid


class Job(msgspec.Struct, frozen=True):
    host: str
    port: int
    mode: str  # "open" or "closed"
    rate: float  # operations per second (open mode)
    seconds: float
    connections: int
    mix: dict[str, int]  # operation name -> weight
    members: int
    zipf_s: float
    tag: str
    reward_id: str | None = None
    drain_seconds: float = 30.0


class Result(msgspec.Struct):
    mode: str
    offered_rate: float
    seconds: float
    operations: int
    completed: int
    errors: int
    statuses: dict[str, int]
    error_samples: list[str]
    latencies_ms: list[float]
    by_operation: dict[str, int]
    cpu_seconds: float
    wall_seconds: float
    throughput: float


class HttpConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, req: Request) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [f"{req.method} {req.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in req.headers().items()]
        body = req.body or b""
        if req.body is not None:
            head.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if chunked:
            payload = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                payload += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
            content = bytes(payload)
        else:
            content = await self.reader.readexactly(length or 0)
        if close:
            self.close()
        return status, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Generator:
    def __init__(self, job: Job) -> None:
        self.job = job
        self.zipf = Zipf(job.members, job.zipf_s, seed=hash(job.tag) & 0xFFFF)
        self.ctx = Context(tag=job.tag, paid_at=Context.now(), random=random.Random(7), reward_id=job.reward_id)
        self.names = list(job.mix)
        self.weights = [job.mix[n] for n in self.names]
        self.mix_random = random.Random(11)
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.by_operation: Counter[str] = Counter()
        self.errors = 0
        self.error_samples: list[str] = []
        self.completed = 0
        self.issued = 0
        self.last_done = 0.0

    def next_operation(self) -> tuple[str, list[Any]]:
        name = self.mix_random.choices(self.names, self.weights)[0]
        self.issued += 1
        return name, OPERATIONS[name](member_uuid(self.zipf.draw()), self.issued, self.ctx)

    def _error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(text[:300])

    async def run_operation(self, conn: HttpConnection, name: str, steps: list[Any], intended: float) -> None:
        previous: Any = None
        for step in steps:
            req = step(previous)
            try:
                status, content = await conn.request(req)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                conn.close()
                self.statuses["connection_error"] += 1
                self._error(f"{name}: {type(exc).__name__}: {exc}")
                return
            self.statuses[str(status)] += 1
            if status != req.expect:
                self._error(f"{name} {req.method} {req.path}: {status} {content[:200]!r}")
                return
            previous = msgspec.json.decode(content) if len(steps) > 1 else None
        now = time.perf_counter()
        self.latencies.append((now - intended) * 1000)
        self.by_operation[name] += 1
        self.completed += 1
        self.last_done = now

    async def open_loop(self) -> None:
        job = self.job
        total = max(1, int(job.rate * job.seconds))
        interval = 1.0 / job.rate
        queue: asyncio.Queue[tuple[float, str, list[Any]] | None] = asyncio.Queue()

        async def worker() -> None:
            conn = HttpConnection(job.host, job.port)
            try:
                while (item := await queue.get()) is not None:
                    intended, name, steps = item
                    await self.run_operation(conn, name, steps, intended)
            finally:
                conn.close()

        workers = [asyncio.create_task(worker()) for _ in range(job.connections)]
        start = time.perf_counter()
        self.start = start
        for i in range(total):
            intended = start + i * interval
            delay = intended - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            if i % 1000 == 0:
                self.ctx.paid_at = Context.now()
            name, steps = self.next_operation()
            queue.put_nowait((intended, name, steps))
        for _ in workers:
            queue.put_nowait(None)
        _, pending = await asyncio.wait(workers, timeout=job.drain_seconds)
        for task in pending:
            task.cancel()
        if pending:
            self._error(f"{queue.qsize()} operations still queued after {job.drain_seconds} s of draining")

    async def closed_loop(self) -> None:
        job = self.job
        self.start = time.perf_counter()
        deadline = self.start + job.seconds

        async def worker() -> None:
            conn = HttpConnection(job.host, job.port)
            try:
                while time.perf_counter() < deadline:
                    name, steps = self.next_operation()
                    await self.run_operation(conn, name, steps, time.perf_counter())
            finally:
                conn.close()

        workers = [asyncio.create_task(worker()) for _ in range(job.connections)]
        _, pending = await asyncio.wait(workers, timeout=job.seconds + job.drain_seconds)
        for task in pending:
            task.cancel()

    async def run(self) -> Result:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if self.job.mode == "open":
            await self.open_loop()
        else:
            await self.closed_loop()
        wall = time.perf_counter() - wall0
        span = max(1e-6, (self.last_done or time.perf_counter()) - self.start)
        return Result(
            mode=self.job.mode,
            offered_rate=self.job.rate,
            seconds=self.job.seconds,
            operations=self.issued,
            completed=self.completed,
            errors=self.errors,
            statuses=dict(self.statuses),
            error_samples=self.error_samples,
            latencies_ms=self.latencies,
            by_operation=dict(self.by_operation),
            cpu_seconds=time.process_time() - cpu0,
            wall_seconds=wall,
            throughput=self.completed / span,
        )


def main() -> None:
    job = msgspec.json.decode(sys.stdin.buffer.read(), type=Job)
    result = uvloop.run(Generator(job).run())
    sys.stdout.buffer.write(msgspec.json.encode(result))


if __name__ == "__main__":
    main()
