"""Programme figures from the ledger's entries, by system account: what was issued, redeemed, used as cash
offset, expired, clawed back and adjusted in a window (in all, or per business day), and what members held at its
end; plus the points liability, the points about to expire and the members per tier.

Redemptions by reward are not here yet: the rewards and redemptions tables do not exist on this branch."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from loyalty_common.db import Tx
from loyalty_common.ledger import MEMBER_ACCOUNTS, Acct
from loyalty_common.timeutil import start_of_day
from loyalty_points import schema

ENTRIES = f'"{schema.SCHEMA}"."{schema.ledger.entries.name}"'
ACCOUNTS = f'"{schema.SCHEMA}"."{schema.ledger.accounts.name}"'
MEMBER = ", ".join(str(int(a)) for a in sorted(MEMBER_ACCOUNTS))


def _net_in(account: Acct) -> str:
    """Points that flowed into a system account (credits less debits)."""
    n = int(account)
    return (
        f"coalesce(sum(amount) FILTER (WHERE credit_account = {n}), 0)"
        f" - coalesce(sum(amount) FILTER (WHERE debit_account = {n}), 0)"
    )


FLOWS = f"""
    SELECT -({_net_in(Acct.ISSUANCE)}) AS issued,
           -({_net_in(Acct.ADJUSTMENT)}) AS adjusted,
           {_net_in(Acct.REDEMPTION)} AS redeemed,
           {_net_in(Acct.OFFSET)} AS offset,
           {_net_in(Acct.EXPIRY)} AS expired,
           {_net_in(Acct.CLAWBACK)} AS clawed_back,
           coalesce(sum(amount) FILTER (WHERE credit_account IN ({MEMBER})), 0)
             - coalesce(sum(amount) FILTER (WHERE debit_account IN ({MEMBER})), 0) AS member_net,
           coalesce(sum(amount) FILTER (WHERE debit_account = {int(Acct.DEBT)}), 0)
             - coalesce(sum(amount) FILTER (WHERE credit_account = {int(Acct.DEBT)}), 0) AS debt_net
    FROM {ENTRIES}
    WHERE (CAST(:from_ AS timestamptz) IS NULL OR created_at >= :from_)
      AND (CAST(:to AS timestamptz) IS NULL OR created_at < :to)
"""

BALANCES = f"""
    SELECT coalesce(sum(available + held + pending - debt), 0) AS outstanding, coalesce(sum(debt), 0) AS debt
    FROM {ACCOUNTS}
"""


async def summary(tx: Tx, from_: datetime | None, to: datetime | None) -> dict[str, Any]:
    flows = (await tx.execute(text(FLOWS), {"from_": from_, "to": to})).one()._mapping
    balances = (await tx.execute(text(BALANCES))).one()
    outstanding, debt = int(balances.outstanding), int(balances.debt)
    if to is not None:
        # Members' holdings at `to`: today's, less what moved into member accounts since.
        later = (await tx.execute(text(FLOWS), {"from_": to, "to": None})).one()
        outstanding -= int(later.member_net)
        debt -= int(later.debt_net)
    return {
        "issued": int(flows["issued"]),
        "adjusted": int(flows["adjusted"]),
        "redeemed": int(flows["redeemed"]),
        "offset": int(flows["offset"]),
        "expired": int(flows["expired"]),
        "clawed_back": int(flows["clawed_back"]),
        "outstanding": outstanding,
        "debt": debt,
    }


# --- operators' reports beyond the summary ---------------------------------------------------------------------
LOTS = f'"{schema.SCHEMA}"."{schema.ledger.lots.name}"'

BALANCE_PARTS = f"""
    SELECT coalesce(sum(available), 0) AS available, coalesce(sum(held), 0) AS held,
           coalesce(sum(pending), 0) AS pending, coalesce(sum(debt), 0) AS debt, count(*) AS accounts
    FROM {ACCOUNTS}
"""

# Unheld points still in lots that expire by each horizon (a lot past its expiry but not yet expired by the
# nightly job counts too: it goes at the next run). Read through the index of lots with points available.
EXPIRING = f"""
    SELECT h.days, coalesce(sum(l.available), 0) AS points, count(DISTINCT l.member_id) AS members
    FROM unnest(CAST(:days AS int[]), CAST(:untils AS timestamptz[])) AS h(days, until)
    LEFT JOIN {LOTS} l ON l.available > 0 AND l.expires_at <= h.until
    GROUP BY h.days ORDER BY h.days
"""

DAILY = f"""
    SELECT d.day, coalesce(f.issued, 0) AS issued, coalesce(f.redeemed, 0) AS redeemed,
           coalesce(f.offset, 0) AS offset, coalesce(f.expired, 0) AS expired,
           coalesce(f.clawed_back, 0) AS clawed_back, coalesce(f.adjusted, 0) AS adjusted
    FROM (SELECT CAST(g AS date) AS day
          FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') g) d
    LEFT JOIN (
        SELECT CAST(created_at AT TIME ZONE :tz AS date) AS day,
               -({_net_in(Acct.ISSUANCE)}) AS issued, {_net_in(Acct.REDEMPTION)} AS redeemed,
               {_net_in(Acct.OFFSET)} AS offset, {_net_in(Acct.EXPIRY)} AS expired,
               {_net_in(Acct.CLAWBACK)} AS clawed_back, -({_net_in(Acct.ADJUSTMENT)}) AS adjusted
        FROM {ENTRIES}
        WHERE created_at >= :start AND created_at < :end
        GROUP BY 1) f ON f.day = d.day
    ORDER BY d.day
"""

TIERS = f"SELECT tier, count(*) AS members FROM {ACCOUNTS} GROUP BY tier"


async def balance_parts(tx: Tx) -> dict[str, int]:
    row = (await tx.execute(text(BALANCE_PARTS))).one()
    return {k: int(v) for k, v in row._mapping.items()}


async def expiring(tx: Tx, now: datetime, horizons: list[int]) -> list[tuple[int, int, int]]:
    """(days, points, members) for each horizon, in days from now."""
    untils = [now + timedelta(days=d) for d in horizons]
    rows = await tx.execute(text(EXPIRING), {"days": horizons, "untils": untils})
    return [(int(r.days), int(r.points), int(r.members)) for r in rows]


async def daily(tx: Tx, first: date, last: date, tz: ZoneInfo) -> list[Any]:
    """The flows of each business day from `first` to `last`, both included (days without any are zeros)."""
    params = {
        "first": first,
        "last": last,
        "tz": tz.key,
        "start": start_of_day(first, tz),
        "end": start_of_day(last + timedelta(days=1), tz),
    }
    return list(await tx.execute(text(DAILY), params))


async def tiers(tx: Tx) -> dict[str, int]:
    return {r.tier: int(r.members) for r in await tx.execute(text(TIERS))}


REDEMPTIONS_BY_REWARD = f"""
    SELECT reward_id::text AS reward_id, (array_agg(reward_name ORDER BY created_at DESC))[1] AS reward_name,
           count(*) FILTER (WHERE status = 'completed') AS redemptions,
           coalesce(sum(quantity) FILTER (WHERE status = 'completed'), 0) AS quantity,
           coalesce(sum(points_spent) FILTER (WHERE status = 'completed'), 0) AS points_spent,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled
    FROM "{schema.SCHEMA}"."{schema.redemptions.name}"
    WHERE (CAST(:from_ AS timestamptz) IS NULL OR created_at >= :from_)
      AND (CAST(:to AS timestamptz) IS NULL OR created_at < :to)
    GROUP BY reward_id
    ORDER BY points_spent DESC, reward_id
"""


async def redemptions_by_reward(tx: Tx, from_: datetime | None, to: datetime | None) -> list[Any]:
    """Completed redemptions (catalog and lottery prizes) per reward, and how many were cancelled."""
    return list(await tx.execute(text(REDEMPTIONS_BY_REWARD), {"from_": from_, "to": to}))
