"""Registering members, changing their profile and finding them. Each call is one transaction."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from loyalty_common.db import Tx
from loyalty_common.errors import (
    ConsentRequired,
    FieldError,
    InvalidReferralCode,
    MemberNotFound,
    PhoneTaken,
    ValidationFailed,
)
from loyalty_common.events import MemberPhoneVerified, MemberRegistered, MemberUpdated
from loyalty_common.idempotency import Answer
from loyalty_common.writes import WriteSet
from loyalty_members import schema
from loyalty_members.context import MembersContext
from loyalty_members.members.queries import load, member_body
from loyalty_members.members.schemas import Member, RegisterRequest, UpdateRequest
from loyalty_members.privacy.phones import normalize
from loyalty_members.referrals import service as referrals

REFERRAL_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: codes are read aloud and typed
REFERRAL_CODE_LENGTH = 6


@dataclass
class MemberRecord:
    """A member's row as written, for answering before the row is read back."""

    member_id: UUID
    status: str
    nickname: str | None
    birthday: date | None
    phone_ciphertext: bytes | None
    phone_key_id: str | None
    referral_code: str
    channel: str | None
    tier: str
    tier_held_until: datetime | None
    created_at: datetime


async def _advisory_lock(tx: Tx, name: str) -> None:
    await tx.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))


async def _phone_owner(tx: Tx, blind_index: bytes) -> UUID | None:
    p = schema.phone_index
    owner: UUID | None = (
        await tx.execute(select(p.c.member_id).where(p.c.blind_index == blind_index))
    ).scalar_one_or_none()
    return owner


async def claim_phone(ctx: MembersContext, tx: Tx, e164: str, member_id: UUID) -> bytes:
    """Reserve a phone number for a member: `phone_taken` if another member has it."""
    blind = ctx.phones.blind_index(e164)
    await _advisory_lock(tx, "phone:" + blind.hex())
    owner = await _phone_owner(tx, blind)
    if owner is not None and owner != member_id:
        raise PhoneTaken("Another member already registered this phone number")
    if owner is None:
        await tx.execute(
            insert(schema.phone_index).values(blind_index=blind, member_id=member_id, created_at=ctx.clock.now())
        )
    return blind


async def new_referral_code(tx: Tx, member_id: UUID) -> str:
    codes = schema.referral_codes
    for _ in range(8):
        code = "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))
        inserted = (
            await tx.execute(
                insert(codes).values(code=code, member_id=member_id).on_conflict_do_nothing().returning(codes.c.code)
            )
        ).first()
        if inserted is not None:
            return code
    raise RuntimeError("could not find a free referral code")


async def find_by_identity(tx: Tx, provider: str, external_id: str) -> UUID | None:
    i = schema.identities
    found: UUID | None = (
        await tx.execute(select(i.c.member_id).where(i.c.provider == provider, i.c.external_id == external_id))
    ).scalar_one_or_none()
    return found


async def register(ctx: MembersContext, tx: Tx, data: RegisterRequest, writes: WriteSet) -> Answer[Any]:
    """Register a member, or answer the member the identity is already bound to (200)."""
    now = ctx.clock.now()
    provider, external_id = data.identity.provider, data.identity.external_id
    await _advisory_lock(tx, f"identity:{provider}:{external_id}")
    bound_to = await find_by_identity(tx, provider, external_id)
    if bound_to is not None:
        return Answer(200, await member_body(ctx, tx, await load(tx, bound_to)))

    if not any(c.purpose == "membership" and c.granted for c in data.consents):
        raise ConsentRequired("Registration needs the member's consent to the membership policy")
    _check_birthday(data.birthday, ctx)
    e164 = normalize(data.phone) if data.phone is not None else None

    member_id = uuid.uuid4()
    ciphertext = key_id = blind = None
    if e164 is not None:
        blind = await claim_phone(ctx, tx, e164, member_id)
        ciphertext, key_id = ctx.phones.encrypt(e164, member_id)
    code = await new_referral_code(tx, member_id)

    referral_status, referral_reason, inviter = None, None, None
    if data.referral_code is not None:
        given = data.referral_code.strip().upper()
        c = schema.referral_codes
        inviter = (await tx.execute(select(c.c.member_id).where(c.c.code == given))).scalar_one_or_none()
        if inviter is None:
            referral_status, referral_reason = "rejected", "unknown referral code"
        elif blind is None:
            referral_status, referral_reason = "pending", "waiting for the invitee to add a phone number"
        else:
            referral_status, referral_reason = await referrals.decide(
                ctx, tx, invitee=member_id, inviter=inviter, invitee_phone_index=blind, at=now
            )

    record = MemberRecord(
        member_id=member_id,
        status="active",
        nickname=data.nickname,
        birthday=data.birthday,
        phone_ciphertext=ciphertext,
        phone_key_id=key_id,
        referral_code=code,
        channel=data.channel,
        tier="regular",
        tier_held_until=None,
        created_at=now,
    )
    await tx.execute(
        insert(schema.members).values(
            **vars(record),
            phone_blind_index=blind,
            tier_reached_at=None,
            updated_at=now,
            erased_at=None,
        )
    )
    writes.insert(
        schema.identities,
        {"provider": provider, "external_id": external_id, "member_id": member_id, "bound_at": now},
    )
    for consent in data.consents:
        writes.insert(
            schema.consents,
            {
                "member_id": member_id,
                "consent_id": uuid.uuid4(),
                "purpose": consent.purpose,
                "policy_version": consent.policy_version,
                "granted": consent.granted,
                "source": "registration",
                "recorded_at": now,
            },
        )
    if referral_status is not None:
        writes.insert(
            schema.referrals,
            {
                "member_id": member_id,
                "inviter_member_id": inviter,
                "code": data.referral_code.strip().upper() if data.referral_code else "",
                "status": referral_status,
                "reason": referral_reason,
                "created_at": now,
                "decided_at": now if referral_status != "pending" else None,
            },
        )
    ctx.outbox.stage(
        writes,
        "member.registered",
        MemberRegistered(
            member_id=str(member_id),
            channel=data.channel,
            has_phone=e164 is not None,
            referral_code_used=inviter is not None,
            registered_at=now.isoformat(),
        ),
        member_id=member_id,
    )
    if e164 is not None:
        ctx.outbox.stage(
            writes,
            "member.phone_verified",
            MemberPhoneVerified(member_id=str(member_id), verified_at=now.isoformat()),
            member_id=member_id,
        )
    # Identity and consents are staged: the body lists the identity from what was just written.
    await writes.flush(tx)
    body = await member_body(ctx, tx, record)
    if data.referral_code is not None and inviter is None:
        problem = InvalidReferralCode(
            "The member was registered, but the referral code is not valid; the referral was recorded as rejected"
        ).problem()
        problem["member"] = msgspec.to_builtins(body)
        problem["member_id"] = str(member_id)
        return Answer(422, problem)
    return Answer(201, body)


def _check_birthday(birthday: date | None, ctx: MembersContext) -> None:
    if birthday is None:
        return
    today = ctx.clock.now().astimezone(ctx.tz).date()
    if birthday > today or birthday.year < 1900:
        raise ValidationFailed([FieldError("birthday", "must be a past date after 1900")])


async def update_profile(
    ctx: MembersContext, tx: Tx, member_id: UUID, data: UpdateRequest, writes: WriteSet
) -> Answer[Member]:
    now = ctx.clock.now()
    row = await load(tx, member_id, lock=True)
    changes: dict[str, Any] = {}
    if data.nickname is not msgspec.UNSET:
        changes["nickname"] = data.nickname
    if data.birthday is not msgspec.UNSET:
        _check_birthday(data.birthday, ctx)
        changes["birthday"] = data.birthday
    phone_changed = False
    if data.phone is not msgspec.UNSET:
        if data.phone is None:
            if row.phone_blind_index is not None:
                await tx.execute(
                    delete(schema.phone_index).where(schema.phone_index.c.blind_index == row.phone_blind_index)
                )
            changes.update(phone_ciphertext=None, phone_key_id=None, phone_blind_index=None)
        else:
            e164 = normalize(data.phone)
            blind = ctx.phones.blind_index(e164)
            if blind != row.phone_blind_index:
                await claim_phone(ctx, tx, e164, member_id)
                if row.phone_blind_index is not None:
                    await tx.execute(
                        delete(schema.phone_index).where(schema.phone_index.c.blind_index == row.phone_blind_index)
                    )
                ciphertext, key_id = ctx.phones.encrypt(e164, member_id)
                changes.update(phone_ciphertext=ciphertext, phone_key_id=key_id, phone_blind_index=blind)
                phone_changed = True
                await referrals.qualify_pending(ctx, tx, member_id, blind)
    if changes:
        m = schema.members
        await tx.execute(update(m).where(m.c.member_id == member_id).values(**changes, updated_at=now))
        fields = sorted({"phone" if k.startswith("phone") else k for k in changes})
        ctx.outbox.stage(
            writes, "member.updated", MemberUpdated(member_id=str(member_id), fields=fields), member_id=member_id
        )
        if phone_changed:
            ctx.outbox.stage(
                writes,
                "member.phone_verified",
                MemberPhoneVerified(member_id=str(member_id), verified_at=now.isoformat()),
                member_id=member_id,
            )
    return Answer(200, await member_body(ctx, tx, await load(tx, member_id)))


async def lookup(
    ctx: MembersContext, tx: Tx, *, provider: str | None, external_id: str | None, phone: str | None
) -> Member:
    if phone is not None:
        try:
            e164 = normalize(phone)
        except Exception:
            raise MemberNotFound("No member has this phone number") from None
        owner = await _phone_owner(tx, ctx.phones.blind_index(e164))
    elif provider is not None and external_id is not None:
        owner = await find_by_identity(tx, provider, external_id)
    else:
        raise ValidationFailed([FieldError("query", "give provider and external_id, or phone")])
    if owner is None:
        raise MemberNotFound()
    return await member_body(ctx, tx, await load(tx, owner))
