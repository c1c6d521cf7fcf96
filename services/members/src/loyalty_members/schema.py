"""Every table of the members service, in its own PostgreSQL schema `members` (its migrations create them).

Lookup tables (`identities`, `phone_index`, `referral_codes`) are keyed by what they look up, not by member, so
that global uniqueness (one identity, one phone, one code) holds when member tables are distributed by member.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import UUID

from loyalty_common.tables import define_common_tables, service_metadata, ts

SCHEMA = "members"

metadata = service_metadata(SCHEMA)
common = define_common_tables(metadata)

members = Table(
    "members",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("nickname", Text, nullable=True),
    Column("birthday", Date, nullable=True),
    Column("phone_ciphertext", LargeBinary, nullable=True),
    Column("phone_key_id", Text, nullable=True),
    Column("phone_blind_index", LargeBinary, nullable=True),
    Column("referral_code", Text, nullable=False),
    Column("channel", Text, nullable=True),
    Column("tier", Text, nullable=False),
    ts("tier_reached_at", nullable=True),
    ts("tier_held_until", nullable=True),
    ts("created_at"),
    ts("updated_at"),
    ts("erased_at", nullable=True),
    PrimaryKeyConstraint("member_id"),
    CheckConstraint("status IN ('active', 'erased')", name="status_known"),
    CheckConstraint("tier IN ('regular', 'silver', 'gold', 'diamond')", name="tier_known"),
    comment="Members. The phone is kept only as AES-GCM ciphertext (with its key id) and a keyed blind index",
)

identities = Table(
    "identities",
    metadata,
    Column("provider", Text, nullable=False),
    Column("external_id", Text, nullable=False),
    Column("member_id", UUID(as_uuid=True), nullable=False),
    ts("bound_at"),
    PrimaryKeyConstraint("provider", "external_id"),
    Index(None, "member_id"),
    comment="Lookup: a channel identity (OneID) and the member it is bound to",
)

phone_index = Table(
    "phone_index",
    metadata,
    Column("blind_index", LargeBinary, nullable=False),
    Column("member_id", UUID(as_uuid=True), nullable=False),
    ts("created_at"),
    PrimaryKeyConstraint("blind_index"),
    Index(None, "member_id"),
    comment="Lookup: keyed hash of a phone number and the member who has it (one member per phone)",
)

referral_codes = Table(
    "referral_codes",
    metadata,
    Column("code", Text, nullable=False),
    Column("member_id", UUID(as_uuid=True), nullable=False),
    PrimaryKeyConstraint("code"),
    Index(None, "member_id"),
    comment="Lookup: referral code and the inviting member",
)

consents = Table(
    "consents",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("consent_id", UUID(as_uuid=True), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("policy_version", Text, nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", Text, nullable=False),
    ts("recorded_at"),
    PrimaryKeyConstraint("member_id", "consent_id"),
    Index(None, "member_id", "purpose", "recorded_at"),
    comment="Every consent given or withdrawn, with the policy version; the history is never rewritten",
)

tier_history = Table(
    "tier_history",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("change_id", UUID(as_uuid=True), nullable=False),
    Column("from_tier", Text, nullable=False),
    Column("to_tier", Text, nullable=False),
    Column("qualifying_points", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    ts("changed_at"),
    PrimaryKeyConstraint("member_id", "change_id"),
    Index(None, "member_id", "changed_at"),
    comment="Every tier change with its reason",
)

referrals = Table(
    "referrals",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("inviter_member_id", UUID(as_uuid=True), nullable=True),
    Column("code", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=True),
    ts("created_at"),
    ts("decided_at", nullable=True),
    PrimaryKeyConstraint("member_id"),
    Index(None, "inviter_member_id", "created_at"),
    CheckConstraint("status IN ('pending', 'rewarded', 'rejected')", name="status_known"),
    comment="The referral each invitee registered with (member_id is the invitee), and what became of it",
)

member_earnings = Table(
    "member_earnings",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("points", BigInteger, nullable=False),
    PrimaryKeyConstraint("member_id", "day"),
    comment="Qualifying points per business day (earned less clawed back), for the rolling tier window",
)

referral_phones = Table(
    "referral_phones",
    metadata,
    Column("blind_index", LargeBinary, nullable=False),
    Column("invitee_member_id", UUID(as_uuid=True), nullable=False),
    ts("qualified_at"),
    PrimaryKeyConstraint("blind_index"),
    comment="Lookup: phones (as keyed hashes) that have qualified a referral; kept after erasure so a phone "
    "qualifies a referral only once ever",
)

erasures = Table(
    "erasures",
    metadata,
    Column("member_id", UUID(as_uuid=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    ts("requested_at"),
    ts("completed_at", nullable=True),
    Column("expired_points", BigInteger, nullable=True),
    PrimaryKeyConstraint("member_id"),
    comment="Erasure requests: done here at once, completed when the points service confirms its part",
)
