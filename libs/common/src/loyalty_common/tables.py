"""Tables every service keeps in its own schema (API keys, idempotency records, outbox).

Each service calls `define_common_tables(metadata)` with its own schema's MetaData, so the tables live in the
service's schema and its own migrations create them; a service never writes another service's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def ts(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


@dataclass(frozen=True)
class CommonTables:
    api_keys: Table
    idempotency_keys: Table
    caller_idempotency_keys: Table
    outbox: Table
    job_runs: Table


def define_common_tables(metadata: MetaData) -> CommonTables:
    api_keys = Table(
        "api_keys",
        metadata,
        Column("name", Text, primary_key=True),
        Column("key_hash", LargeBinary, nullable=False, unique=True),
        Column("scopes", ARRAY(Text), nullable=False),
        ts("created_at"),
        ts("revoked_at", nullable=True),
        comment="API keys made with the admin CLI; only a SHA-256 of each key is kept",
    )
    idempotency_keys = Table(
        "idempotency_keys",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("key", Text, nullable=False),
        Column("fingerprint", LargeBinary, nullable=False),
        Column("status_code", SmallInteger, nullable=False),
        Column("body", LargeBinary, nullable=False),
        ts("created_at"),
        PrimaryKeyConstraint("member_id", "key"),
        Index(None, "created_at"),
        comment="First answers of member-scoped mutating calls, replayed for the same Idempotency-Key",
    )
    caller_idempotency_keys = Table(
        "caller_idempotency_keys",
        metadata,
        Column("caller", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("fingerprint", LargeBinary, nullable=False),
        Column("status_code", SmallInteger, nullable=False),
        Column("body", LargeBinary, nullable=False),
        ts("created_at"),
        PrimaryKeyConstraint("caller", "key"),
        Index(None, "created_at"),
        comment="First answers of calls that involve no member, keyed per caller (API key name)",
    )
    outbox = Table(
        "outbox",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("seq", BigInteger, Identity(always=True), nullable=False),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("event_type", Text, nullable=False),
        Column("event_version", Integer, nullable=False, server_default=text("1")),
        Column("payload", JSONB, nullable=False),
        ts("occurred_at"),
        ts("published_at", nullable=True),
        PrimaryKeyConstraint("member_id", "seq"),
        UniqueConstraint("member_id", "event_id"),
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
        comment="Events written in the same transaction as the change they announce (transactional outbox)",
    )
    job_runs = Table(
        "job_runs",
        metadata,
        Column("run_id", UUID(as_uuid=True), primary_key=True),
        Column("job", Text, nullable=False),
        Column("trigger", Text, nullable=False),
        ts("as_of"),
        ts("started_at"),
        ts("finished_at", nullable=True),
        Column("outcome", Text, nullable=False),
        Column("counts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("error", Text, nullable=True),
        Column("host", Text, nullable=False),
        Index(None, "job", "started_at"),
        Index(None, "started_at"),
        comment="Every run of a scheduled job: when, as of when, what it did, how it ended",
    )
    return CommonTables(
        api_keys=api_keys,
        idempotency_keys=idempotency_keys,
        caller_idempotency_keys=caller_idempotency_keys,
        outbox=outbox,
        job_runs=job_runs,
    )
