"""Checks every invariant of the ledger over the whole database and says what is wrong.

Used by `GET /v1/admin/points/ledger/verify`, by the `loyalty verify` command (non-zero exit on any problem),
by the tests after every step of the property-based run, and by the benchmark after each scenario.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import text

from loyalty_common.db import Tx
from loyalty_common.ledger.model import Acct, Kind
from loyalty_common.ledger.tables import LedgerTables

MAX_PROBLEMS_PER_CHECK = 50


class Problem(msgspec.Struct):
    check: str
    detail: str
    member_id: str | None = None


class Totals(msgspec.Struct):
    """System-account totals over all time, in points."""

    issued: int
    adjusted: int
    redeemed: int
    offset: int
    expired: int
    clawed_back: int
    available: int
    held: int
    pending: int
    debt: int

    @property
    def outstanding(self) -> int:
        return self.available + self.held + self.pending - self.debt


class Report(msgspec.Struct):
    ok: bool
    checked: int
    problems: list[Problem]
    counts: dict[str, int]
    totals: Totals


def _checks(t: LedgerTables) -> dict[str, str]:
    accounts, entries = _name(t.accounts), _name(t.entries)
    lots, movements = _name(t.lots), _name(t.lot_movements)
    a, h, p, d = int(Acct.AVAILABLE), int(Acct.HELD), int(Acct.PENDING), int(Acct.DEBT)
    valid_accounts = ", ".join(str(int(x)) for x in Acct)
    member_accounts = f"{a}, {h}, {p}, {d}"
    kinds = ", ".join(f"'{k}'" for k in Kind)
    side = (
        "sum(CASE WHEN credit_account = {n} THEN amount ELSE 0 END) - "
        "sum(CASE WHEN debit_account = {n} THEN amount ELSE 0 END)"
    )
    effect = "(CASE WHEN e.credit_account = {n} THEN e.amount WHEN e.debit_account = {n} THEN -e.amount ELSE 0 END)"
    return {
        "account_balances": f"""
            WITH sums AS (
                SELECT member_id, {side.format(n=a)} AS available, {side.format(n=h)} AS held,
                       {side.format(n=p)} AS pending, -({side.format(n=d)}) AS debt
                FROM {entries} GROUP BY member_id)
            SELECT a.member_id::text AS member_id,
                   format('account says available %s held %s pending %s debt %s; entries say %s %s %s %s',
                          a.available, a.held, a.pending, a.debt, coalesce(s.available, 0), coalesce(s.held, 0),
                          coalesce(s.pending, 0), coalesce(s.debt, 0)) AS detail
            FROM {accounts} a LEFT JOIN sums s USING (member_id)
            WHERE (a.available, a.held, a.pending, a.debt) IS DISTINCT FROM
                  (coalesce(s.available, 0), coalesce(s.held, 0), coalesce(s.pending, 0), coalesce(s.debt, 0))
            UNION ALL
            SELECT s.member_id::text, 'entries exist for a member with no account'
            FROM sums s LEFT JOIN {accounts} a USING (member_id) WHERE a.member_id IS NULL""",
        "lots_match_balances": f"""
            WITH sums AS (SELECT member_id, sum(available) AS available, sum(held) AS held
                          FROM {lots} GROUP BY member_id)
            SELECT a.member_id::text, format('available %s and held %s, but lots hold %s and %s',
                   a.available, a.held, coalesce(s.available, 0), coalesce(s.held, 0))
            FROM {accounts} a LEFT JOIN sums s USING (member_id)
            WHERE (a.available, a.held) IS DISTINCT FROM (coalesce(s.available, 0), coalesce(s.held, 0))""",
        "lots_match_movements": f"""
            WITH sums AS (SELECT member_id, lot_id, sum(available_delta) AS available, sum(held_delta) AS held
                          FROM {movements} GROUP BY member_id, lot_id)
            SELECT l.member_id::text, format('lot %s has available %s held %s but its movements sum to %s and %s',
                   l.lot_id, l.available, l.held, coalesce(s.available, 0), coalesce(s.held, 0))
            FROM {lots} l LEFT JOIN sums s USING (member_id, lot_id)
            WHERE (l.available, l.held) IS DISTINCT FROM (coalesce(s.available, 0), coalesce(s.held, 0))
            UNION ALL
            SELECT s.member_id::text, format('movements name lot %s which does not exist', s.lot_id)
            FROM sums s LEFT JOIN {lots} l USING (member_id, lot_id) WHERE l.lot_id IS NULL""",
        "entries_match_movements": f"""
            WITH moved AS (SELECT member_id, entry_id, sum(available_delta) AS available, sum(held_delta) AS held
                           FROM {movements} GROUP BY member_id, entry_id)
            SELECT e.member_id::text,
                   format('entry %s (%s) moves available by %s and held by %s, its lots by %s and %s',
                          e.entry_id, e.kind, {effect.format(n=a)}, {effect.format(n=h)},
                          coalesce(m.available, 0), coalesce(m.held, 0))
            FROM {entries} e LEFT JOIN moved m USING (member_id, entry_id)
            WHERE ({effect.format(n=a)}, {effect.format(n=h)})
                  IS DISTINCT FROM (coalesce(m.available, 0), coalesce(m.held, 0))""",
        "entries_well_formed": f"""
            SELECT member_id::text, format('entry %s: kind %s, %s -> %s, amount %s', entry_id, kind,
                   debit_account, credit_account, amount)
            FROM {entries}
            WHERE amount <= 0 OR debit_account = credit_account
               OR debit_account NOT IN ({valid_accounts}) OR credit_account NOT IN ({valid_accounts})
               OR kind NOT IN ({kinds})
               OR NOT (debit_account IN ({member_accounts}) OR credit_account IN ({member_accounts}))""",
        # Each entry debits one account and credits another by the same positive amount (checked above), so a
        # transaction balances by construction; what remains to check is that it stays within one member.
        "transactions_single_member": f"""
            SELECT min(member_id::text), format('transaction %s spans %s members', transaction_id,
                   count(DISTINCT member_id))
            FROM {entries} GROUP BY transaction_id HAVING count(DISTINCT member_id) > 1""",
        "entry_sequence": f"""
            WITH seqs AS (SELECT member_id, count(*) AS n, max(seq) AS top, min(seq) AS bottom,
                                 (array_agg(available_after ORDER BY seq DESC))[1] AS last_available
                          FROM {entries} GROUP BY member_id)
            SELECT a.member_id::text,
                   format('entry_seq %s but %s entries numbered %s..%s; last available_after %s, available %s',
                   a.entry_seq, coalesce(s.n, 0), s.bottom, s.top, s.last_available, a.available)
            FROM {accounts} a LEFT JOIN seqs s USING (member_id)
            WHERE a.entry_seq <> coalesce(s.n, 0) OR (s.n > 0 AND (s.top <> a.entry_seq OR s.bottom <> 1
                  OR s.last_available <> a.available))""",
        "nothing_negative": f"""
            SELECT member_id::text, format('account has a negative balance: %s %s %s %s',
                   available, held, pending, debt)
            FROM {accounts} WHERE available < 0 OR held < 0 OR pending < 0 OR debt < 0
            UNION ALL
            SELECT member_id::text, format('lot %s is out of bounds: points %s available %s held %s',
                   lot_id, points, available, held)
            FROM {lots} WHERE available < 0 OR held < 0 OR available + held > points OR points <= 0""",
    }


def _name(table: Any) -> str:
    return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


async def totals(tx: Tx, t: LedgerTables) -> Totals:
    entries, accounts = _name(t.entries), _name(t.accounts)

    def net(account: Acct) -> str:
        n = int(account)
        return (
            f"coalesce(sum(amount) FILTER (WHERE credit_account = {n}), 0) - "
            f"coalesce(sum(amount) FILTER (WHERE debit_account = {n}), 0)"
        )

    flows = (
        await tx.execute(
            text(
                f"SELECT -({net(Acct.ISSUANCE)}) AS issued, -({net(Acct.ADJUSTMENT)}) AS adjusted, "
                f"{net(Acct.REDEMPTION)} AS redeemed, {net(Acct.OFFSET)} AS offset, "
                f"{net(Acct.EXPIRY)} AS expired, {net(Acct.CLAWBACK)} AS clawed_back FROM {entries}"
            )
        )
    ).one()
    balances = (
        await tx.execute(
            text(
                f"SELECT coalesce(sum(available), 0) AS available, coalesce(sum(held), 0) AS held, "
                f"coalesce(sum(pending), 0) AS pending, coalesce(sum(debt), 0) AS debt FROM {accounts}"
            )
        )
    ).one()
    return Totals(
        issued=int(flows.issued),
        adjusted=int(flows.adjusted),
        redeemed=int(flows.redeemed),
        offset=int(flows.offset),
        expired=int(flows.expired),
        clawed_back=int(flows.clawed_back),
        available=int(balances.available),
        held=int(balances.held),
        pending=int(balances.pending),
        debt=int(balances.debt),
    )


async def verify(tx: Tx, t: LedgerTables) -> Report:
    problems: list[Problem] = []
    for check, sql in _checks(t).items():
        rows = await tx.execute(text(f"{sql} LIMIT {MAX_PROBLEMS_PER_CHECK}"))
        problems.extend(Problem(check=check, member_id=r[0], detail=r[1]) for r in rows)
    counts_row = (
        await tx.execute(
            text(
                f"SELECT (SELECT count(*) FROM {_name(t.accounts)}) AS accounts, "
                f"(SELECT count(*) FROM {_name(t.entries)}) AS entries, "
                f"(SELECT count(*) FROM {_name(t.lots)}) AS lots, "
                f"(SELECT count(*) FROM {_name(t.lot_movements)}) AS lot_movements"
            )
        )
    ).one()
    counts = {k: int(v) for k, v in counts_row._mapping.items()}
    sums = await totals(tx, t)
    inflow = sums.issued + sums.adjusted
    outflow = sums.redeemed + sums.offset + sums.expired + sums.clawed_back
    if inflow - outflow != sums.outstanding:
        problems.append(
            Problem(
                check="conservation",
                detail=(
                    f"issued {sums.issued} + adjusted {sums.adjusted} - redeemed {sums.redeemed} - offset "
                    f"{sums.offset} - expired {sums.expired} - clawed back {sums.clawed_back} = "
                    f"{inflow - outflow}, but outstanding (available + held + pending - debt) is "
                    f"{sums.outstanding}"
                ),
            )
        )
    return Report(
        ok=not problems,
        checked=counts["accounts"] + counts["entries"] + counts["lots"],
        problems=problems,
        counts=counts,
        totals=sums,
    )
