"""Reads of a member's account. Reads take no locks and never rescan the ledger: balances are on the account
row, expiring points come from the live-lot index."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, func, select

from loyalty_common.db import Tx
from loyalty_common.errors import MemberNotFound
from loyalty_points import members, schema

accounts, entries, lots = schema.ledger.accounts, schema.ledger.entries, schema.ledger.lots


# The account read and the next expiring points are on every account view: built once, with bind parameters.
_ACCOUNT = select(
    accounts.c.status,
    accounts.c.tier,
    accounts.c.available,
    accounts.c.held,
    accounts.c.pending,
    accounts.c.debt,
    accounts.c.lifetime_earned,
).where(accounts.c.member_id == bindparam("member_id"))
_EXPIRING = (
    select(func.sum(lots.c.available).label("points"), lots.c.expires_at)
    .where(lots.c.member_id == bindparam("member_id"), lots.c.available > 0)
    .group_by(lots.c.expires_at)
    .order_by(lots.c.expires_at)
)
_EXPIRING_FIRST = _EXPIRING.limit(bindparam("limit"))
_EXPIRING_UNTIL = _EXPIRING.where(lots.c.expires_at <= bindparam("until"))


async def account_row(tx: Tx, member_id: UUID) -> dict[str, Any]:
    """The member's balances; zeros for a member the points service has not seen move points yet."""
    row = (await tx.execute(_ACCOUNT, {"member_id": member_id})).first()
    if row is not None and row.status == "active":
        return dict(row._mapping)
    entry = await members.lookup(tx, member_id)
    if entry is None or entry.status != "active" or row is not None:
        raise MemberNotFound()
    return {
        "status": "active",
        "tier": entry.tier,
        "available": 0,
        "held": 0,
        "pending": 0,
        "debt": 0,
        "lifetime_earned": 0,
    }


async def expiring(tx: Tx, member_id: UUID, *, until: datetime | None, limit: int | None) -> list[tuple[int, datetime]]:
    """Available (unheld) points by expiry instant, soonest first."""
    params: dict[str, Any] = {"member_id": member_id}
    if until is None and limit is not None:
        query, params["limit"] = _EXPIRING_FIRST, limit
    elif until is not None and limit is None:
        query, params["until"] = _EXPIRING_UNTIL, until
    else:
        query = _EXPIRING
        if until is not None:
            query = query.where(lots.c.expires_at <= until)
        if limit is not None:
            query = query.limit(limit)
    return [(int(r.points), r.expires_at) for r in await tx.execute(query, params)]


def _entry_page_query(by_kind: bool, before: bool) -> Any:
    e = entries
    query = (
        select(
            e.c.seq,
            e.c.entry_id,
            e.c.transaction_id,
            e.c.kind,
            e.c.points,
            e.c.available_after,
            e.c.reason,
            e.c.reference,
            e.c.created_at,
            e.c.expires_at,
        )
        .where(e.c.member_id == bindparam("member_id"))
        .order_by(e.c.seq.desc())
        .limit(bindparam("rows"))
    )
    if by_kind:
        query = query.where(e.c.kind == bindparam("kind"))
    if before:
        query = query.where(e.c.seq < bindparam("before_seq"))
    return query


_ENTRY_PAGES = {(k, b): _entry_page_query(k, b) for k in (False, True) for b in (False, True)}
"""The four shapes of an entries page (filtered by kind or not, first page or not), built once."""


async def entry_page(tx: Tx, member_id: UUID, *, kind: str | None, before_seq: int | None, limit: int) -> list[Any]:
    query = _ENTRY_PAGES[kind is not None, before_seq is not None]
    params = {"member_id": member_id, "rows": limit + 1, "kind": kind, "before_seq": before_seq}
    return list(await tx.execute(query, {k: v for k, v in params.items() if v is not None}))
