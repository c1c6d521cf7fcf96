"""Seeds a realistic programme fast, with COPY: members with identities and referral codes (members schema),
and for each member an account, about ten purchases each with its order, ledger entry, lot and lot movement,
and for some members a hold on their oldest lot. Balances, entry sequences and lots are built exactly as the
ledger would have built them, so `verify` is clean on the seeded database.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from bench.workload import member_uuid
from loyalty_common.ledger import Acct, Kind
from loyalty_common.rules import ProgrammeRules
from loyalty_common.timeutil import lot_expiry
from loyalty_points.earning.rules import yuan

CHUNK_MEMBERS = 5_000

COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("members", "members"): (
        "member_id", "status", "nickname", "referral_code", "channel", "tier", "tier_reached_at",
        "tier_held_until", "created_at", "updated_at",
    ),
    ("members", "identities"): ("provider", "external_id", "member_id", "bound_at"),
    ("members", "referral_codes"): ("code", "member_id"),
    ("points", "accounts"): (
        "member_id", "status", "tier", "available", "held", "pending", "debt", "lifetime_earned", "entry_seq",
        "created_at", "updated_at",
    ),
    ("points", "orders"): (
        "member_id", "order_id", "amount_fen", "points", "multiplier", "refunded_fen", "clawed_back",
        "transaction_id", "entry_id", "lot_id", "pending", "paid_at", "created_at",
    ),
    ("points", "entries"): (
        "member_id", "entry_id", "seq", "transaction_id", "kind", "debit_account", "credit_account", "amount",
        "points", "available_after", "reason", "reference", "lot_id", "created_at", "expires_at",
    ),
    ("points", "lots"): ("member_id", "lot_id", "entry_id", "points", "available", "held", "earned_at", "expires_at"),
    ("points", "lot_movements"): ("member_id", "entry_id", "lot_id", "available_delta", "held_delta"),
}  # fmt: skip


def _tier(rules: ProgrammeRules, earned: int) -> str:
    name = rules.tiers.ladder[0].name
    for rule in rules.tiers.ladder:
        if earned >= rule.threshold:
            name = rule.name
    return name


class _Ids:
    """Random version-4 UUIDs, made in bulk (uuid.uuid4 per row is a large share of the seed's time)."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self) -> UUID:
        if self._at + 16 > len(self._pool):
            self._pool, self._at = os.urandom(16 * 65_536), 0
        raw = self._pool[self._at : self._at + 16]
        self._at += 16
        return UUID(bytes=raw, version=4)


def member_rows(
    ranks: Sequence[int], lots_per_member: int, hold_percent: int, now: datetime, rules: ProgrammeRules
) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """Every row for these members, keyed by (schema, table), consistent with the ledger's invariants."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    validity = rules.expiry.validity_days
    rows: dict[tuple[str, str], list[tuple[Any, ...]]] = {key: [] for key in COLUMNS}
    new_id = _Ids()
    rnd = random.Random(ranks[0])
    expiry_cache: dict[int, datetime] = {}
    for rank in ranks:
        member = member_uuid(rank)
        joined = now - timedelta(days=400, seconds=rnd.randrange(86_400 * 30))
        count = max(1, lots_per_member + rnd.randint(-3, 3))
        # Earned over the last 330 days, oldest first, so every lot is still live (validity is a year).
        days_ago = sorted((rnd.randrange(1, 330) for _ in range(count)), reverse=True)
        available = 0
        lots: list[list[Any]] = []
        for seq, ago in enumerate(days_ago, start=1):
            points = rnd.randint(20, 800)
            amount = points * 100
            earned = now - timedelta(days=ago, seconds=rnd.randrange(86_400))
            expires = expiry_cache.get(ago)
            if expires is None:
                expires = expiry_cache[ago] = lot_expiry(earned, tz, validity)
            entry_id, lot_id, transaction_id = new_id(), new_id(), new_id()
            order_id = f"seed-{rank}-{seq}"
            available += points
            rows["points", "entries"].append(
                (
                    member, entry_id, seq, transaction_id, str(Kind.PURCHASE), int(Acct.ISSUANCE),
                    int(Acct.AVAILABLE), points, points, available,
                    f"Order {order_id}: {yuan(amount)} paid earned {points} points", f"order:{order_id}",
                    lot_id, earned, expires,
                )
            )  # fmt: skip
            rows["points", "orders"].append(
                (member, order_id, amount, points, "1", 0, 0, transaction_id, entry_id, lot_id, 0, earned, earned)
            )
            rows["points", "lot_movements"].append((member, entry_id, lot_id, points, 0))
            lots.append([member, lot_id, entry_id, points, points, 0, earned, expires])
        earned_total = available
        held = 0
        seq = count
        if rnd.randrange(100) < hold_percent:
            oldest = lots[0]
            held = min(oldest[4], rnd.randint(10, 100))
            oldest[4] -= held
            oldest[5] += held
            available -= held
            seq += 1
            entry_id = new_id()
            rows["points", "entries"].append(
                (
                    member, entry_id, seq, new_id(), str(Kind.OFFSET_HOLD), int(Acct.AVAILABLE), int(Acct.HELD),
                    held, -held, available, f"{held} points held for checkout", f"offset:seed-{rank}", None,
                    now - timedelta(minutes=5), None,
                )
            )  # fmt: skip
            rows["points", "lot_movements"].append((member, entry_id, oldest[1], -held, held))
        rows["points", "lots"].extend(tuple(lot) for lot in lots)
        tier = _tier(rules, earned_total)
        rows["points", "accounts"].append(
            (member, "active", tier, available, held, 0, 0, earned_total, seq, joined, now)
        )
        code = f"B{rank:07d}"
        rows["members", "members"].append(
            (member, "active", f"会员{rank}", code, "bench", tier, joined, joined + timedelta(days=365), joined, now)
        )
        rows["members", "identities"].append(("wechat_mini", f"bench-o6-{rank}", member, joined))
        rows["members", "referral_codes"].append((code, member))
    return rows


async def seed(url: str, members: int, lots_per_member: int, hold_percent: int) -> dict[str, int]:
    """COPY the whole programme into the (migrated, empty) database at `url`; returns row counts."""
    rules = ProgrammeRules()
    now = datetime.now(UTC)
    started = time.perf_counter()
    connections = [await asyncpg.connect(url) for _ in COLUMNS]
    counts = dict.fromkeys((f"{s}.{t}" for s, t in COLUMNS), 0)
    try:
        for start in range(1, members + 1, CHUNK_MEMBERS):
            ranks = range(start, min(members, start + CHUNK_MEMBERS - 1) + 1)
            rows = member_rows(ranks, lots_per_member, hold_percent, now, rules)
            await asyncio.gather(
                *(
                    conn.copy_records_to_table(table, schema_name=schema, columns=list(COLUMNS[schema, table]),
                                               records=rows[schema, table])
                    for conn, (schema, table) in zip(connections, COLUMNS, strict=True)
                )
            )  # fmt: skip
            for (schema, table), table_rows in rows.items():
                counts[f"{schema}.{table}"] += len(table_rows)
            print(f"  seeded {ranks[-1]:,} of {members:,} members ({time.perf_counter() - started:.0f} s)", flush=True)
        await connections[0].execute("VACUUM (ANALYZE)")
        await connections[0].execute("CHECKPOINT")
    finally:
        for conn in connections:
            await conn.close()
    return counts
