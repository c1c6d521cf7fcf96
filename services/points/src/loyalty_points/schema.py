"""Every table of the points service, in its own PostgreSQL schema `points` (its migrations create them)."""

from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, PrimaryKeyConstraint, SmallInteger, Table, Text
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
    ts("paid_at"),
    ts("created_at"),
    PrimaryKeyConstraint("member_id", "order_id"),
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

# --- leaderboards ------------------------------------------------------------------------------------------
# Scores are kept per member and period, in the same transaction as the earning. Ranks are read from the ranking
# index plus `leaderboard_counts`, which a trigger on the scores keeps (see the migration and
# leaderboards/queries.py). A settled period is read from its frozen `leaderboard_standings`.

leaderboard_scores = Table(
    "leaderboard_scores",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("board", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("score", BigInteger, nullable=False),
    ts("reached_at"),
    ts("updated_at"),
    PrimaryKeyConstraint("member_id", "board", "period"),
    comment="Each member's score per board and period: counted earnings less their clawbacks",
)
Index(
    "ix_leaderboard_scores_ranking",
    leaderboard_scores.c.board,
    leaderboard_scores.c.period,
    leaderboard_scores.c.score.desc(),
    leaderboard_scores.c.reached_at,
    leaderboard_scores.c.member_id,
)

leaderboard_counts = Table(
    "leaderboard_counts",
    metadata,
    Column("board", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("k1", BigInteger, nullable=False),
    Column("k2", BigInteger, nullable=False),
    Column("shard", SmallInteger, nullable=False),
    Column("members", BigInteger, nullable=False),
    PrimaryKeyConstraint("board", "period", "level", "k1", "k2", "shard"),
    comment=(
        "Members with a positive score per score band (level 1: k1 = band start, sharded by member) and per score "
        "and hour reached for scores below 100 (level 2: k1 = score, k2 = hour): kept by a trigger, read for ranks"
    ),
)

leaderboard_exclusions = Table(
    "leaderboard_exclusions",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("excluded_by", Text, nullable=False),
    ts("excluded_at"),
    PrimaryKeyConstraint("member_id"),
    Index(None, "excluded_at"),
    comment="Members an operator keeps off the leaderboards (fraud): not ranked, never awarded",
)

leaderboard_settlements = Table(
    "leaderboard_settlements",
    metadata,
    Column("board", Text, nullable=False),
    Column("period", Text, nullable=False),
    ts("starts_at"),
    ts("ends_at"),
    Column("status", Text, nullable=False),
    Column("ranked", BigInteger, nullable=False),
    ts("as_of"),
    ts("frozen_at"),
    ts("completed_at", nullable=True),
    PrimaryKeyConstraint("board", "period"),
    CheckConstraint("status IN ('frozen', 'completed')", name="status_known"),
    comment="One row per settled period: its standings are frozen; completed once every prize is awarded",
)

leaderboard_standings = Table(
    "leaderboard_standings",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("board", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("rank", BigInteger, nullable=True),
    Column("score", BigInteger, nullable=False),
    ts("reached_at"),
    PrimaryKeyConstraint("member_id", "board", "period"),
    Index("ix_leaderboard_standings_rank", "board", "period", "rank"),
    comment="The final standings of a settled period, frozen at settlement (rank null: excluded member)",
)

leaderboard_awards = Table(
    "leaderboard_awards",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("board", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("rank", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=True),
    Column("reward_id", Text, nullable=True),
    Column("quantity", BigInteger, nullable=True),
    Column("status", Text, nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=True),
    ts("created_at"),
    ts("awarded_at", nullable=True),
    PrimaryKeyConstraint("member_id", "board", "period"),
    Index(None, "board", "period", "status"),
    CheckConstraint("status IN ('pending', 'awarded', 'entitled', 'void')", name="status_known"),
    CheckConstraint("(points IS NULL) <> (reward_id IS NULL)", name="points_or_reward"),
    comment="A winner's prize for a settled period: points credited exactly once, or a reward entitlement",
)
