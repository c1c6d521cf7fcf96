"""Programme figures from the ledger's entries, by system account: what was issued, redeemed, used as cash
offset, expired, clawed back and adjusted in a window, and what members held at its end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from loyalty_common.db import Tx
from loyalty_common.ledger import MEMBER_ACCOUNTS, Acct
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
