"""Scale-out readiness: every member-scoped table leads its primary key and each unique index with member_id
(so it can be distributed by member on Citus), and the migrations and the models agree."""

from __future__ import annotations

import os

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common import devdb, migrations
from tests.conftest import ADMIN_URL_ENV, TEMPLATE_ENV

# Tables keyed by what they look up, distributed by that key (or small reference tables), with the reason.
# Tables without a member_id column are not member-scoped and need no entry: points.leaderboard_counts (members per
# score band of one board and period, kept by a trigger) and points.leaderboard_settlements (one row per settled
# period) are keyed by (board, period) and would be reference or board-distributed tables on Citus. The member-level
# leaderboard tables (scores, standings, awards, exclusions) lead with member_id like every member-scoped table;
# their ranking indexes are not unique.
NOT_MEMBER_SCOPED = {
    "members.identities": "lookup by (provider, external_id): one identity, one member",
    "members.phone_index": "lookup by the phone's blind index: one phone, one member",
    "members.referral_codes": "lookup by code",
    "points.audit_log": "operators' audit trail: member_id is an optional subject, records are keyed by audit_id",
    "members.audit_log": "operators' audit trail: member_id is an optional subject, records are keyed by audit_id",
}


async def test_member_scoped_tables_lead_with_member_id(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        tables = (
            (
                await conn.execute(
                    text(
                        "SELECT table_schema || '.' || table_name FROM information_schema.columns "
                        "WHERE table_schema IN ('points', 'members') AND column_name = 'member_id' "
                        "AND table_name IN (SELECT table_name FROM information_schema.tables "
                        "WHERE table_type = 'BASE TABLE' AND table_schema IN ('points', 'members'))"
                    )
                )
            )
            .scalars()
            .all()
        )
        indexes = (
            await conn.execute(
                text(
                    "SELECT n.nspname || '.' || t.relname, i.relname, ix.indisprimary, "
                    "array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord) "
                    "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord) "
                    "FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid "
                    "JOIN pg_namespace n ON n.oid = t.relnamespace "
                    "WHERE n.nspname IN ('points', 'members') AND ix.indisunique"
                )
            )
        ).all()
    member_scoped = set(tables) - set(NOT_MEMBER_SCOPED)
    assert "points.entries" in member_scoped
    assert {"points.leaderboard_scores", "points.leaderboard_standings", "points.leaderboard_awards"} <= member_scoped
    assert "members.members" in member_scoped
    unique_by_table: dict[str, list[tuple[str, bool, list[str]]]] = {}
    for table, index, primary, columns in indexes:
        unique_by_table.setdefault(table, []).append((index, primary, list(columns)))
    for table in member_scoped:
        entries = unique_by_table.get(table, [])
        assert any(primary for _, primary, _ in entries), f"{table} has no primary key"
        for index, _, columns in entries:
            assert "member_id" in columns, f"{table}: unique index {index} {columns} lacks member_id"


def test_models_and_migrations_agree() -> None:
    template = devdb.with_database(os.environ[ADMIN_URL_ENV], os.environ[TEMPLATE_ENV])
    migrations.check(template)
