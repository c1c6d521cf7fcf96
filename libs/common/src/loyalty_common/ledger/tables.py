"""The ledger's tables, created in the points service's schema by its migrations.

Every table is keyed by member first (`member_id` leads each primary key and unique index), so the ledger can be
distributed by member (Citus) without changing a query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from loyalty_common.tables import ts


@dataclass(frozen=True)
class LedgerTables:
    accounts: Table
    entries: Table
    lots: Table
    lot_movements: Table


def define_ledger_tables(metadata: MetaData) -> LedgerTables:
    accounts = Table(
        "accounts",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("status", Text, nullable=False, server_default=text("'active'")),
        Column("tier", Text, nullable=False, server_default=text("'regular'")),
        Column("available", BigInteger, nullable=False, server_default=text("0")),
        Column("held", BigInteger, nullable=False, server_default=text("0")),
        Column("pending", BigInteger, nullable=False, server_default=text("0")),
        Column("debt", BigInteger, nullable=False, server_default=text("0")),
        Column("lifetime_earned", BigInteger, nullable=False, server_default=text("0")),
        Column("entry_seq", BigInteger, nullable=False, server_default=text("0")),
        ts("created_at"),
        ts("updated_at"),
        PrimaryKeyConstraint("member_id"),
        CheckConstraint("available >= 0", name="available_not_negative"),
        CheckConstraint("held >= 0", name="held_not_negative"),
        CheckConstraint("pending >= 0", name="pending_not_negative"),
        CheckConstraint("debt >= 0", name="debt_not_negative"),
        comment="Each member's balances; its row lock serializes all ledger work on that member",
    )
    entries = Table(
        "entries",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("entry_id", UUID(as_uuid=True), nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("transaction_id", UUID(as_uuid=True), nullable=False),
        Column("kind", Text, nullable=False),
        Column("debit_account", SmallInteger, nullable=False),
        Column("credit_account", SmallInteger, nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("points", BigInteger, nullable=False),
        Column("available_after", BigInteger, nullable=False),
        Column("reason", Text, nullable=False),
        Column("reference", Text, nullable=True),
        Column("lot_id", UUID(as_uuid=True), nullable=True),
        Column("corrects_entry_id", UUID(as_uuid=True), nullable=True),
        ts("created_at"),
        ts("expires_at", nullable=True),
        PrimaryKeyConstraint("member_id", "entry_id"),
        UniqueConstraint("member_id", "seq"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("debit_account <> credit_account", name="two_accounts"),
        Index(None, "member_id", "kind", "seq"),
        Index(None, "created_at"),
        Index(
            "ix_entries_corrections",
            "member_id",
            "corrects_entry_id",
            postgresql_where=text("corrects_entry_id IS NOT NULL"),
        ),
        comment="Append-only: each row moves `amount` from debit_account to credit_account",
    )
    lots = Table(
        "lots",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("lot_id", UUID(as_uuid=True), nullable=False),
        Column("entry_id", UUID(as_uuid=True), nullable=False),
        Column("points", BigInteger, nullable=False),
        Column("available", BigInteger, nullable=False),
        Column("held", BigInteger, nullable=False),
        ts("earned_at"),
        ts("expires_at"),
        PrimaryKeyConstraint("member_id", "lot_id"),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("available >= 0 AND held >= 0", name="not_negative"),
        CheckConstraint("available + held <= points", name="within_points"),
        Index(
            "ix_lots_live",
            "member_id",
            "expires_at",
            postgresql_where=text("available > 0 OR held > 0"),
        ),
        Index("ix_lots_due", "expires_at", postgresql_where=text("available > 0")),
        comment="Points credited together, with one expiry; available + held is what is left of them",
    )
    lot_movements = Table(
        "lot_movements",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("entry_id", UUID(as_uuid=True), nullable=False),
        Column("lot_id", UUID(as_uuid=True), nullable=False),
        Column("available_delta", BigInteger, nullable=False),
        Column("held_delta", BigInteger, nullable=False),
        PrimaryKeyConstraint("member_id", "entry_id", "lot_id"),
        Index(None, "member_id", "lot_id"),
        comment="Which lots each entry took points from or put them back into",
    )
    return LedgerTables(accounts=accounts, entries=entries, lots=lots, lot_movements=lot_movements)
