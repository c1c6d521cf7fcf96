"""Tables every service keeps in its own schema (API keys, idempotency records, outbox).

Each service calls `define_common_tables(metadata)` with its own schema's MetaData, so the tables live in the
service's schema and its own migrations create them; a service never writes another service's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    inbox: Table
    consumer_positions: Table
    event_retries: Table
    dead_letters: Table
    webhook_endpoints: Table
    webhook_deliveries: Table
    webhook_attempts: Table
    audit_log: Table


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
        # The writing transaction's id: consumers read only below the oldest running transaction, so an event
        # that commits late is never skipped, and a member's events (whose transactions serialize on the
        # member's lock) come out in the order they happened.
        Column("xid", BigInteger, nullable=False, server_default=text("(pg_current_xact_id()::text)::bigint")),
        ts("published_at", nullable=True),
        PrimaryKeyConstraint("member_id", "seq"),
        UniqueConstraint("member_id", "event_id"),
        Index("ix_outbox_position", "xid", "seq"),
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
    inbox = Table(
        "inbox",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("consumer", Text, nullable=False),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        ts("processed_at"),
        PrimaryKeyConstraint("member_id", "consumer", "event_id"),
        comment="Events a consumer has handled: a second delivery of one is recognised and skipped",
    )
    consumer_positions = Table(
        "consumer_positions",
        metadata,
        Column("consumer", Text, primary_key=True),
        Column("last_xid", BigInteger, nullable=False),
        Column("last_seq", BigInteger, nullable=False),
        ts("updated_at"),
        comment="How far each consumer has read its source outbox",
    )
    event_retries = Table(
        "event_retries",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("consumer", Text, nullable=False),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("xid", BigInteger, nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("event", JSONB, nullable=False),
        Column("attempts", Integer, nullable=False),
        ts("next_attempt_at"),
        Column("last_error", Text, nullable=True),
        PrimaryKeyConstraint("member_id", "consumer", "event_id"),
        Index(None, "consumer", "next_attempt_at"),
        comment="Events waiting to be handled again (a member's later events queue behind a failing one)",
    )
    dead_letters = Table(
        "dead_letters",
        metadata,
        Column("member_id", UUID(as_uuid=True), nullable=False),
        Column("dead_letter_id", UUID(as_uuid=True), nullable=False),
        Column("consumer", Text, nullable=False),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("event_type", Text, nullable=False),
        Column("event", JSONB, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("last_error", Text, nullable=True),
        ts("parked_at"),
        ts("replayed_at", nullable=True),
        PrimaryKeyConstraint("member_id", "dead_letter_id"),
        Index(None, "parked_at"),
        comment="Events that kept failing, parked for an operator to look at and replay",
    )
    webhook_endpoints = Table(
        "webhook_endpoints",
        metadata,
        Column("endpoint_id", UUID(as_uuid=True), primary_key=True),
        Column("url", Text, nullable=False),
        Column("event_types", ARRAY(Text), nullable=False),
        Column("secret", Text, nullable=False),
        Column("description", Text, nullable=True),
        Column("active", Boolean, nullable=False),
        Column("created_by", Text, nullable=False),
        ts("created_at"),
        ts("updated_at"),
        comment="Brand systems' HTTPS endpoints and the event types each wants, signed with its own secret",
    )
    webhook_deliveries = Table(
        "webhook_deliveries",
        metadata,
        Column("delivery_id", UUID(as_uuid=True), primary_key=True),
        Column("endpoint_id", UUID(as_uuid=True), nullable=False),
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("event_type", Text, nullable=False),
        Column("body", JSONB, nullable=False),
        Column("status", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        ts("next_attempt_at"),
        Column("last_status_code", Integer, nullable=True),
        Column("last_error", Text, nullable=True),
        ts("created_at"),
        ts("delivered_at", nullable=True),
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index(None, "endpoint_id", "created_at"),
        comment="One event to one endpoint: retried with exponential backoff for a day",
    )
    webhook_attempts = Table(
        "webhook_attempts",
        metadata,
        Column("attempt_id", UUID(as_uuid=True), primary_key=True),
        Column("delivery_id", UUID(as_uuid=True), nullable=False),
        ts("attempted_at"),
        Column("status_code", Integer, nullable=True),
        Column("error", Text, nullable=True),
        Column("duration_ms", Integer, nullable=False),
        Index(None, "delivery_id", "attempted_at"),
        comment="Every delivery attempt and how it went",
    )
    audit_log = Table(
        "audit_log",
        metadata,
        Column("audit_id", UUID(as_uuid=True), primary_key=True),
        ts("at"),
        Column("actor", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("member_id", UUID(as_uuid=True), nullable=True),
        Column("request_id", Text, nullable=True),
        Column("before", JSONB, nullable=True),
        Column("after", JSONB, nullable=True),
        Column("detail", Text, nullable=True),
        Index(None, "at"),
        Index(None, "actor", "at"),
        Index(None, "action", "at"),
        Index(None, "member_id", "at"),
        comment="Append-only record of every admin action: who, what, when, and the before and after",
    )
    return CommonTables(
        api_keys=api_keys,
        idempotency_keys=idempotency_keys,
        caller_idempotency_keys=caller_idempotency_keys,
        outbox=outbox,
        job_runs=job_runs,
        inbox=inbox,
        consumer_positions=consumer_positions,
        event_retries=event_retries,
        dead_letters=dead_letters,
        webhook_endpoints=webhook_endpoints,
        webhook_deliveries=webhook_deliveries,
        webhook_attempts=webhook_attempts,
        audit_log=audit_log,
    )
