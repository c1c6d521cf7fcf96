"""The points service's published interfaces for privacy: member_export() and member_last_activity

Revision ID: 3a7e1c9d2b40
Revises: f68563e49f68
Create Date: 2026-11-25 19:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3a7e1c9d2b40"
down_revision: str | None = "f68563e49f68"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEMBER_TABLES = (
    ("entries", "seq"),
    ("lots", "expires_at"),
    ("lot_movements", "entry_id"),
    ("orders", "created_at"),
    ("refunds", "created_at"),
    ("activities", "created_at"),
    ("redemptions", "created_at"),
    ("vouchers", "issued_at"),
    ("lottery_draws", "created_at"),
    ("offsets", "created_at"),
    ("offset_refunds", "created_at"),
    ("leaderboard_scores", "period"),
    ("leaderboard_standings", "period"),
    ("leaderboard_awards", "period"),
)


def _collection(table: str, order: str) -> str:
    return (
        f"'{table}', coalesce((SELECT jsonb_agg(to_jsonb(t) - 'member_id' ORDER BY t.{order}) "
        f"FROM points.{table} t WHERE t.member_id = p_member), '[]'::jsonb)"
    )


def upgrade() -> None:
    collections = ",\n            ".join(_collection(table, order) for table, order in MEMBER_TABLES)
    op.execute(
        f"""
        CREATE FUNCTION points.member_export(p_member uuid) RETURNS jsonb
        LANGUAGE sql STABLE AS $$
        SELECT jsonb_build_object(
            'account', (SELECT to_jsonb(a) - 'member_id' FROM points.accounts a WHERE a.member_id = p_member),
            {collections}
        )
        $$
        """
    )
    op.execute(
        "COMMENT ON FUNCTION points.member_export(uuid) IS "
        "'Published interface of the points service: everything it holds on one member, for access requests'"
    )
    op.execute(
        "CREATE VIEW points.member_last_activity AS "
        "SELECT member_id, updated_at AS last_ledger_activity_at FROM points.accounts"
    )
    op.execute(
        "COMMENT ON VIEW points.member_last_activity IS "
        "'Published interface of the points service: when each member last moved points (retention review)'"
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS points.member_last_activity")
    op.execute("DROP FUNCTION IF EXISTS points.member_export(uuid)")
