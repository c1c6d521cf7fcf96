"""The points ledger: append-only, double-entry, lots with expiry, holds, debt, per-member serialization."""

from loyalty_common.ledger.model import (
    EARNING_KINDS,
    MEMBER_ACCOUNTS,
    Acct,
    Balances,
    Entry,
    Kind,
    Lot,
    MemberBook,
    Movement,
    allocate,
    allocate_restore,
    member_points,
)
from loyalty_common.ledger.store import LedgerStore
from loyalty_common.ledger.tables import LedgerTables, define_ledger_tables
from loyalty_common.ledger.verify import Report, Totals, totals, verify

__all__ = [
    "EARNING_KINDS",
    "MEMBER_ACCOUNTS",
    "Acct",
    "Balances",
    "Entry",
    "Kind",
    "LedgerStore",
    "LedgerTables",
    "Lot",
    "MemberBook",
    "Movement",
    "Report",
    "Totals",
    "allocate",
    "allocate_restore",
    "define_ledger_tables",
    "member_points",
    "totals",
    "verify",
]
