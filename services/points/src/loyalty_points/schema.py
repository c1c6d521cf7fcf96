"""Every table of the points service, in its own PostgreSQL schema `points` (its migrations create them)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, Index, PrimaryKeyConstraint, Table, Text, text
from sqlalchemy.dialects.postgresql import UUID

from loyalty_common.ledger import define_ledger_tables
from loyalty_common.tables import define_common_tables, service_metadata, ts

SCHEMA = "points"

metadata = service_metadata(SCHEMA)
common = define_common_tables(metadata)
ledger = define_ledger_tables(metadata)

orders = Table(
    "orders",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("order_id", Text, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("multiplier", Text, nullable=False),
    Column("refunded_fen", BigInteger, nullable=False),
    Column("clawed_back", BigInteger, nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=False),
    Column("entry_id", UUID(as_uuid=True), nullable=True),
    Column("lot_id", UUID(as_uuid=True), nullable=True),
    Column("pending", BigInteger, nullable=False, server_default=text("0")),
    ts("paid_at"),
    ts("activates_at", nullable=True),
    ts("created_at"),
    PrimaryKeyConstraint("member_id", "order_id"),
    Index("ix_orders_pending", "activates_at", postgresql_where=text("pending > 0")),
    comment="Paid orders that earned points, with what their refunds have clawed back so far",
)

refunds = Table(
    "refunds",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("order_id", Text, nullable=False),
    Column("refund_id", Text, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("points_clawed_back", BigInteger, nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=False),
    ts("created_at"),
    PrimaryKeyConstraint("member_id", "order_id", "refund_id"),
    Index(None, "member_id", "created_at"),
    comment="Refunds of paid orders and the points each clawed back",
)

activities = Table(
    "activities",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("activity_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    ts("occurred_at"),
    Column("day", Date, nullable=False),
    Column("status", Text, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("capped", Boolean, nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=True),
    ts("created_at"),
    ts("decided_at", nullable=True),
    Column("decided_by", Text, nullable=True),
    PrimaryKeyConstraint("member_id", "activity_id"),
    Index(None, "member_id", "day"),
    Index("ix_activities_moderation", "created_at", postgresql_where=text("status = 'pending'")),
    comment="Community activity reported by the community system, the points it earned and its moderation",
)

expiry_reminders = Table(
    "expiry_reminders",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("lot_id", UUID(as_uuid=True), nullable=False),
    Column("days_ahead", BigInteger, nullable=False),
    ts("sent_at"),
    PrimaryKeyConstraint("member_id", "lot_id", "days_ahead"),
    comment="Expiring-soon reminders already announced: once per lot and threshold",
)
