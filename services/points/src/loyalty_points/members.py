"""How the points service knows members: its own account rows, created on first sight from the members
service's published view `members.member_directory` (read-only; the points service never writes there)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Boolean, Column, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import UUID as PgUUID

from loyalty_common.db import Tx
from loyalty_common.errors import MemberNotFound
from loyalty_common.ledger import MemberBook
from loyalty_points.context import PointsContext
from loyalty_points.ids import parse_id

member_directory = Table(
    "member_directory",
    MetaData(schema="members"),
    Column("member_id", PgUUID(as_uuid=True), primary_key=True),
    Column("status", Text),
    Column("tier", Text),
    Column("nickname", Text),
    Column("marketing_allowed", Boolean),
)


@dataclass(frozen=True)
class DirectoryEntry:
    member_id: UUID
    status: str
    tier: str
    nickname: str | None


def parse_member_id(raw: str) -> UUID:
    """Member ids are UUIDs; anything else names no member."""
    return parse_id(raw, MemberNotFound(f"No member {raw!r}"))


async def lookup(tx: Tx, member_id: UUID) -> DirectoryEntry | None:
    d = member_directory
    row = (await tx.execute(select(d.c.status, d.c.tier, d.c.nickname).where(d.c.member_id == member_id))).first()
    if row is None:
        return None
    return DirectoryEntry(member_id, row.status, row.tier, row.nickname)


async def lock_member(ctx: PointsContext, tx: Tx, member_id: UUID, *, with_lots: bool) -> MemberBook:
    """Lock the member's account for this transaction (opening it on first sight) and load their book."""
    now = ctx.clock.now()
    book = await ctx.ledger.lock(tx, member_id, now, with_lots=with_lots)
    if book is None:
        entry = await lookup(tx, member_id)
        if entry is None or entry.status != "active":
            raise MemberNotFound()
        await ctx.ledger.open_account(tx, member_id, tier=entry.tier, status=entry.status, now=now)
        book = await ctx.ledger.lock(tx, member_id, now, with_lots=with_lots)
        assert book is not None
    if book.status != "active":
        raise MemberNotFound()
    return book
