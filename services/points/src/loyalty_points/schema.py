"""Every table of the points service, in its own PostgreSQL schema `points` (its migrations create them).

Member-scoped tables lead their primary key and every unique index with `member_id` (distributable by member);
the catalog tables (rewards, lotteries and their prizes) are global and small.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

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

rewards = Table(
    "rewards",
    metadata,
    Column("reward_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("points_cost", BigInteger, nullable=False),
    Column("stock", BigInteger, nullable=True),
    Column("per_member_limit", Integer, nullable=True),
    Column("min_tier", Text, nullable=True),
    Column("active", Boolean, nullable=False),
    ts("starts_at", nullable=True),
    ts("ends_at", nullable=True),
    Column("image_url", Text, nullable=True),
    ts("created_at"),
    ts("updated_at"),
    PrimaryKeyConstraint("reward_id"),
    CheckConstraint("kind IN ('coupon', 'gift', 'discount', 'service')", name="kind_known"),
    CheckConstraint("points_cost > 0", name="points_cost_positive"),
    CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    CheckConstraint("per_member_limit IS NULL OR per_member_limit > 0", name="limit_positive"),
    CheckConstraint("starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at", name="window_ordered"),
    Index(None, "created_at", "reward_id"),
    comment="The rewards catalog: what points buy. `stock` is what is left (NULL: unlimited)",
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("redemption_id", UUID(as_uuid=True), nullable=False),
    Column("reward_id", UUID(as_uuid=True), nullable=False),
    Column("reward_name", Text, nullable=False),
    Column("reward_kind", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("points_cost", BigInteger, nullable=False),
    Column("points_spent", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=False),
    Column("entry_id", UUID(as_uuid=True), nullable=True),
    Column("draw_id", UUID(as_uuid=True), nullable=True),
    ts("created_at"),
    ts("cancelled_at", nullable=True),
    PrimaryKeyConstraint("member_id", "redemption_id"),
    CheckConstraint("status IN ('completed', 'cancelled')", name="status_known"),
    CheckConstraint("source IN ('catalog', 'lottery')", name="source_known"),
    CheckConstraint("quantity > 0 AND points_spent >= 0", name="amounts"),
    Index(None, "member_id", "created_at", "redemption_id"),
    Index(None, "member_id", "reward_id"),
    Index(None, "redemption_id"),
    comment="Rewards members took, with what the reward was and cost then (a later change of the reward never "
    "rewrites them) and the ledger entry that paid for them",
)

vouchers = Table(
    "vouchers",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("code", Text, nullable=False),
    Column("redemption_id", UUID(as_uuid=True), nullable=False),
    Column("reward_id", UUID(as_uuid=True), nullable=False),
    Column("status", Text, nullable=False),
    ts("issued_at"),
    ts("voided_at", nullable=True),
    PrimaryKeyConstraint("member_id", "code"),
    CheckConstraint("status IN ('issued', 'void')", name="status_known"),
    Index(None, "member_id", "redemption_id"),
    Index(None, "code"),
    comment="Voucher codes, one per unit redeemed: 100 random bits each, so unique without a global index",
)

lotteries = Table(
    "lotteries",
    metadata,
    Column("lottery_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("cost_points", BigInteger, nullable=False),
    Column("daily_limit", Integer, nullable=True),
    Column("active", Boolean, nullable=False),
    ts("starts_at", nullable=True),
    ts("ends_at", nullable=True),
    ts("created_at"),
    ts("updated_at"),
    PrimaryKeyConstraint("lottery_id"),
    CheckConstraint("cost_points > 0", name="cost_positive"),
    CheckConstraint("daily_limit IS NULL OR daily_limit > 0", name="limit_positive"),
    CheckConstraint("starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at", name="window_ordered"),
    Index(None, "created_at", "lottery_id"),
    comment="Points lotteries: a cost per draw, an open window and a per-member daily draw limit (NULL: none)",
)

lottery_prizes = Table(
    "lottery_prizes",
    metadata,
    Column("lottery_id", UUID(as_uuid=True), nullable=False),
    Column("prize_id", UUID(as_uuid=True), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("points", BigInteger, nullable=True),
    Column("reward_id", UUID(as_uuid=True), nullable=True),
    Column("weight", BigInteger, nullable=False),
    Column("stock", BigInteger, nullable=True),
    PrimaryKeyConstraint("lottery_id", "prize_id"),
    CheckConstraint("kind IN ('points', 'reward', 'nothing')", name="kind_known"),
    CheckConstraint("weight > 0", name="weight_positive"),
    CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
    CheckConstraint(
        "(kind = 'points') = (points IS NOT NULL AND points > 0) AND (kind = 'reward') = (reward_id IS NOT NULL)",
        name="prize_matches_kind",
    ),
    comment="A lottery's prize table: bonus points, a reward from the catalog, or nothing; each with a weight and "
    "its own stock (NULL: unlimited)",
)

lottery_draws = Table(
    "lottery_draws",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("draw_id", UUID(as_uuid=True), nullable=False),
    Column("lottery_id", UUID(as_uuid=True), nullable=False),
    Column("business_day", Date, nullable=False),
    Column("cost_points", BigInteger, nullable=False),
    Column("prize_id", UUID(as_uuid=True), nullable=False),
    Column("prize_name", Text, nullable=False),
    Column("prize_kind", Text, nullable=False),
    Column("points_won", BigInteger, nullable=False),
    Column("reward_id", UUID(as_uuid=True), nullable=True),
    Column("redemption_id", UUID(as_uuid=True), nullable=True),
    Column("weights", JSONB, nullable=False),
    Column("total_weight", BigInteger, nullable=False),
    Column("roll", BigInteger, nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=False),
    ts("created_at"),
    PrimaryKeyConstraint("member_id", "draw_id"),
    Index(None, "member_id", "lottery_id", "business_day"),
    Index(None, "member_id", "created_at", "draw_id"),
    Index(None, "lottery_id", "created_at", "draw_id"),
    comment="Every draw, with the prizes and weights in force and the secure random roll that chose among them, "
    "so an operator can audit it",
)

offsets = Table(
    "offsets",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("offset_id", UUID(as_uuid=True), nullable=False),
    Column("order_id", Text, nullable=False),
    Column("order_amount_fen", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("offset_fen", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("hold_entry_id", UUID(as_uuid=True), nullable=False),
    Column("confirm_entry_id", UUID(as_uuid=True), nullable=True),
    Column("refunded_fen", BigInteger, nullable=False, server_default=text("0")),
    Column("points_returned", BigInteger, nullable=False, server_default=text("0")),
    ts("expires_at"),
    ts("created_at"),
    ts("settled_at", nullable=True),
    PrimaryKeyConstraint("member_id", "offset_id"),
    UniqueConstraint("member_id", "order_id"),
    CheckConstraint("status IN ('held', 'confirmed', 'cancelled', 'expired')", name="status_known"),
    CheckConstraint("points > 0 AND offset_fen > 0 AND offset_fen <= order_amount_fen", name="amounts"),
    CheckConstraint(
        "refunded_fen BETWEEN 0 AND order_amount_fen AND points_returned BETWEEN 0 AND points", name="refunds"
    ),
    Index(None, "offset_id"),
    Index("ix_offsets_held_due", "expires_at", postgresql_where=text("status = 'held'")),
    comment="Points used as cash at checkout, one per order: held, then confirmed, cancelled or expired (released)",
)

offset_refunds = Table(
    "offset_refunds",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("offset_id", UUID(as_uuid=True), nullable=False),
    Column("refund_id", Text, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("points_returned", BigInteger, nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=False),
    ts("created_at"),
    PrimaryKeyConstraint("member_id", "offset_id", "refund_id"),
    comment="Refunds of orders paid partly with points, and the points each returned",
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
