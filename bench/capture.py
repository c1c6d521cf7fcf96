"""Captures the SQL the points service runs for one operation and turns it into a pgbench script.

The service's own app runs in-process on a small capture database, with SQLAlchemy hooks that record every
statement between BEGIN and COMMIT: its text, its parameters and the rows it returned. The script replays those
statements in the same transactions, with their parameters rewritten so each pgbench transaction is a new,
realistic one that keeps the ledger consistent:

- the member becomes a zipfian draw over the seeded members (the same law as the load generator);
- the request's own ids (order id, Idempotency-Key) get a random unique part;
- ids the service generated (transaction, entry, lot, event) become random UUIDs, the same one wherever the
  service used the same value;
- values the service computed from what it read (the entry sequence, the balance after the entry) become
  `\\gset` variables of the statement that read them, plus the same difference.

Everything else stays as captured (amounts, texts, the stored answer's bytes). An operation whose statements use
values the script cannot derive (ids read from a multi-row result) is reported as not replayable.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.operations import API_KEYS, OPERATIONS, Context, reward_request
from bench.workload import member_uuid, member_uuid_sql
from loyalty_common import devdb, migrations
from loyalty_common.clock import SystemClock
from loyalty_common.settings import parse_api_keys, parse_phone_keys

CAPTURE_DATABASE = "loyalty_bench_capture"
TAG = "capTg7q"
"""Marks the request's own ids in the captured text, so the script can give them a unique part."""

DISTINCT = {"available": 7_000_000, "lifetime_earned": 9_000_000, "entry_seq": 3_000_000}
"""The capture member's balances: large and far apart, so a parameter computed from one is recognised."""
MATCH_WINDOW = 100_000


@dataclass
class Statement:
    sql: str
    params: tuple[Any, ...] = ()
    columns: tuple[str, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class Capture:
    operation: str
    transactions: list[list[Statement]]
    started: datetime


@dataclass
class Script:
    operation: str
    text: str
    replayable: bool
    note: str = ""


class _Recorder:
    def __init__(self) -> None:
        self.active = False
        self.transactions: list[list[Statement]] = []
        self.current: list[Statement] | None = None

    @staticmethod
    def _autocommit(conn: Any) -> bool:
        return bool(conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT")

    def begin(self, conn: Any) -> None:
        # SQLAlchemy begins a transaction object even in autocommit mode, where the driver sends no BEGIN.
        if self.active and not self._autocommit(conn):
            self.current = [Statement("BEGIN")]

    def commit(self, conn: Any) -> None:
        if self.active and self.current is not None:
            self.current.append(Statement("COMMIT"))
            self.transactions.append(self.current)
            self.current = None

    def rollback(self, conn: Any) -> None:
        self.current = None

    def after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not self.active:
            return
        columns = tuple(d[0] for d in cursor.description or ())
        # The asyncpg adapter has fetched every row already; peek at them without consuming them.
        rows = [tuple(r) for r in getattr(cursor, "_rows", ())]
        captured = Statement(statement, tuple(parameters or ()), columns, rows)
        if self.current is None or self._autocommit(conn):  # a read: each statement on its own
            self.transactions.append([captured])
        else:
            self.current.append(captured)

    def hooks(self) -> list[tuple[str, Any]]:
        return [("begin", self.begin), ("commit", self.commit), ("rollback", self.rollback),
                ("after_cursor_execute", self.after)]  # fmt: skip


async def _capture_database(admin_url: str) -> str:
    await devdb.ensure_database(admin_url, CAPTURE_DATABASE, recreate=True)
    url = devdb.with_database(admin_url, CAPTURE_DATABASE)
    await asyncio.to_thread(migrations.upgrade, url)
    member = member_uuid(1)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO members.members (member_id, status, referral_code, tier, created_at, updated_at) "
            "VALUES ($1, 'active', 'CAPTURE', 'regular', $2, $2)",
            member,
            now,
        )
        await conn.execute(
            "INSERT INTO points.accounts (member_id, status, tier, available, lifetime_earned, entry_seq, "
            "created_at, updated_at) VALUES ($1, 'active', 'regular', $2, $3, $4, $5, $5)",
            member,
            DISTINCT["available"],
            DISTINCT["lifetime_earned"],
            DISTINCT["entry_seq"],
            now,
        )
        # A few lots and entries, so reads return what they would for a real member.
        for i in range(1, 4):
            entry, lot = UUID(int=i), UUID(int=100 + i)
            await conn.execute(
                "INSERT INTO points.entries (member_id, entry_id, seq, transaction_id, kind, debit_account, "
                "credit_account, amount, points, available_after, reason, reference, lot_id, created_at, "
                "expires_at) VALUES ($1, $2, $3, $2, 'purchase', 101, 1, 100, 100, 100, 'capture', 'capture', "
                "$4, $5::timestamptz, $5::timestamptz + interval '30 days')",
                member,
                entry,
                DISTINCT["entry_seq"] - 3 + i,
                lot,
                now,
            )
            await conn.execute(
                "INSERT INTO points.lots VALUES ($1, $2, $3, 100, 100, 0, $4::timestamptz, "
                "$4::timestamptz + interval '30 days' * $5::int)",
                member,
                lot,
                entry,
                now,
                i,
            )
    finally:
        await conn.close()
    return url


async def capture(admin_url: str, operations: list[str], reward_id: str | None = None) -> dict[str, Capture]:
    """Run each operation twice through the real points app (the first warms it up) and record the second."""
    import base64

    import msgspec
    from litestar.testing import AsyncTestClient

    from loyalty_common.settings import Settings
    from loyalty_points.app import create_app

    url = await _capture_database(admin_url)
    settings = Settings(
        env="test",
        database_url=url,
        api_keys=parse_api_keys(API_KEYS),
        phone_keys=parse_phone_keys("b1:" + base64.b64encode(secrets.token_bytes(32)).decode()),
        blind_index_key=secrets.token_bytes(32),
        log_level="warning",
    )
    recorder = _Recorder()
    # Listening on the Engine class reaches the engine the app makes for itself in its own lifespan.
    for name, hook in recorder.hooks():
        event.listen(Engine, name, hook)
    captures: dict[str, Capture] = {}
    try:
        app = create_app(settings, SystemClock(), run_consumers=False)
        async with AsyncTestClient(app) as client:
            if "redemption" in operations and reward_id is None:
                req = reward_request(TAG)
                resp = await client.request(req.method, req.path, content=req.body, headers=req.headers())
                reward_id = str(resp.json()["reward_id"])
            for name in operations:
                for attempt in (1, 2):
                    ctx = Context(tag=TAG, paid_at=Context.now(), random=random.Random(attempt), reward_id=reward_id)
                    started = datetime.now(UTC)
                    recorder.transactions = []
                    recorder.active = attempt == 2
                    previous: Any = None
                    for step in OPERATIONS[name](member_uuid(1), attempt, ctx):
                        req = step(previous)
                        resp = await client.request(req.method, req.path, content=req.body, headers=req.headers())
                        if resp.status_code != req.expect:
                            raise RuntimeError(
                                f"capture of {name}: {req.path} answered {resp.status_code}: {resp.text}"
                            )
                        previous = msgspec.json.decode(resp.content)
                    recorder.active = False
                captures[name] = Capture(name, recorder.transactions, started)
    finally:
        for name, hook in recorder.hooks():
            event.remove(Engine, name, hook)
        await devdb.drop_database(admin_url, CAPTURE_DATABASE)
    return captures


# -- rendering -----------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"(?<!:):([A-Za-z0-9_]+)")


def _literal_text(value: str) -> str:
    # pgbench reads `:name` anywhere in a command as a variable, even inside quotes: colons are escaped.
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\072").replace("\n", "\\n")
    return f"E'{escaped}'"


class _Renderer:
    def __init__(self, capture: Capture, zipf_s: float) -> None:
        self.capture = capture
        self.zipf_s = zipf_s
        self.member = member_uuid(1)
        self.member_sql = member_uuid_sql(":mrank")
        self.generated: dict[UUID, str] = {}
        self.unmapped: set[str] = set()
        self.gset_values: list[tuple[str, Any]] = []  # (variable, value) in the order they were read
        self.multi_row_uuids: set[UUID] = set()
        self.used_gsets: set[str] = set()

    # each value becomes a SQL expression
    def uuid_expr(self, value: UUID) -> str:
        if value == self.member:
            return self.member_sql
        for var, read in reversed(self.gset_values):
            if read == value:
                self.used_gsets.add(var.split("_", 1)[0])
                return f"(:{var})::uuid"
        if value in self.multi_row_uuids:
            self.unmapped.add(f"id {value} read from a multi-row result")
            return f"'{value}'::uuid"
        var = self.generated.setdefault(value, f"g{len(self.generated) + 1}")
        return f"md5('{var}' || (:{var})::text)::uuid"

    def text_expr(self, value: str) -> str:
        tokens: dict[str, str] = {TAG: "('pgb' || (:uid)::text)", str(self.member): f"({self.member_sql})::text"}
        for uuid_value in list(self.generated) + [v for _, v in self.gset_values if isinstance(v, UUID)]:
            tokens[str(uuid_value)] = f"({self.uuid_expr(uuid_value)})::text"
        for candidate in re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value):
            if candidate not in tokens:
                tokens[candidate] = f"({self.uuid_expr(UUID(candidate))})::text"
        pattern = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))
        parts: list[str] = []
        at = 0
        for match in pattern.finditer(value):
            if match.start() > at:
                parts.append(_literal_text(value[at : match.start()]))
            parts.append(tokens[match.group(0)])
            at = match.end()
        if at < len(value) or not parts:
            parts.append(_literal_text(value[at:]))
        return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"

    def int_expr(self, value: int) -> str:
        for var, read in reversed(self.gset_values):
            distinct = isinstance(read, int) and not isinstance(read, bool) and abs(read) >= MATCH_WINDOW
            if distinct and abs(value - read) < MATCH_WINDOW:
                self.used_gsets.add(var.split("_", 1)[0])
                delta = value - read
                return f"((:{var})::bigint {'+' if delta >= 0 else '-'} {abs(delta)})"
        return str(value)

    def expr(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return self.int_expr(value)
        if isinstance(value, float | Decimal):
            return repr(float(value)) if isinstance(value, float) else str(value)
        if isinstance(value, UUID):
            return self.uuid_expr(value)
        if isinstance(value, str):
            return self.text_expr(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return f"'\\x{bytes(value).hex()}'::bytea"
        if isinstance(value, datetime):
            micros = int((value - self.capture.started).total_seconds() * 1_000_000)
            return f"(now() + interval '{micros} microseconds')"
        if isinstance(value, date):
            return f"'{value.isoformat()}'::date"
        if isinstance(value, list | tuple):
            if not value:
                return "'{}'"
            return "ARRAY[" + ", ".join(self.expr(v) for v in value) + "]"
        raise TypeError(f"cannot render a {type(value).__name__} parameter for pgbench")

    def statement(self, index: int, stmt: Statement) -> list[str]:
        if stmt.sql in ("BEGIN", "COMMIT"):
            return [f"{stmt.sql};"]
        rendered = [self.expr(p) for p in stmt.params]

        def place(match: re.Match[str]) -> str:
            return f"({rendered[int(match.group(1)) - 1]})"

        sql = re.sub(r"\$(\d+)", place, " ".join(stmt.sql.split()))
        sql = sql.replace("\n", " ")
        lines = [f"{sql};"]
        if len(stmt.rows) == 1:
            prefix = f"s{index}"
            for column, value in zip(stmt.columns, stmt.rows[0], strict=True):
                self.gset_values.append((f"{prefix}_{column}", value))
            lines.append(f"\\gset {prefix}_")
        else:
            for row in stmt.rows:
                self.multi_row_uuids.update(v for v in row if isinstance(v, UUID))
        return lines

    def render(self) -> Script:
        body: list[str] = []
        index = 0
        for transaction in self.capture.transactions:
            for stmt in transaction:
                index += 1
                body.extend(self.statement(index, stmt))
        # Keep \gset only where a later statement uses what it stored (pgbench fails a \gset of zero rows).
        kept: list[str] = []
        for line in body:
            if line.startswith("\\gset "):
                name = line.split()[1].rstrip("_")
                if name not in self.used_gsets:
                    continue
            kept.append(line)
        header = [
            f"-- {self.capture.operation}: the statements the points service ran for one operation, captured "
            f"from the code by bench/capture.py",
            f"\\set mrank random_zipfian(1, :members, {self.zipf_s})",
            "\\set uid random(1, 9223372036854775806)",
            *(f"\\set {var} random(1, 9223372036854775806)" for var in self.generated.values()),
        ]
        text = "\n".join(header + kept) + "\n"
        known = {"members", "mrank", "uid", *self.generated.values(), *(v for v, _ in self.gset_values)}
        strange = {m for line in kept for m in _VARIABLE.findall(line) if m not in known}
        if strange:
            self.unmapped.add(f"pgbench would read {sorted(strange)} as variables")
        if not any(t for t in self.capture.transactions):
            self.unmapped.add("the capture recorded no SQL")
        note = "; ".join(sorted(self.unmapped))
        return Script(self.capture.operation, text, replayable=not self.unmapped, note=note)


def render(capture: Capture, zipf_s: float) -> Script:
    return _Renderer(capture, zipf_s).render()
