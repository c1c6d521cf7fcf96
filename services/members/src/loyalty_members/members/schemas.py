from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

Provider = Literal["wechat_mini", "wechat_unionid", "wecom", "tmall", "jd", "douyin", "store"]
Purpose = Literal["membership", "marketing", "data_analysis"]
ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Nickname = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
PhoneText = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
PolicyVersion = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class IdentityIn(msgspec.Struct, forbid_unknown_fields=True):
    provider: Provider
    external_id: ExternalId


class ConsentIn(msgspec.Struct, forbid_unknown_fields=True):
    purpose: Purpose
    policy_version: PolicyVersion
    granted: bool = True


class RegisterRequest(msgspec.Struct, forbid_unknown_fields=True):
    identity: IdentityIn
    consents: list[ConsentIn] = msgspec.field(default_factory=list)
    phone: PhoneText | None = None
    nickname: Nickname | None = None
    birthday: date | None = None
    referral_code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None
    channel: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class UpdateRequest(msgspec.Struct, forbid_unknown_fields=True):
    nickname: Nickname | msgspec.UnsetType | None = msgspec.UNSET
    birthday: date | msgspec.UnsetType | None = msgspec.UNSET
    phone: PhoneText | msgspec.UnsetType | None = msgspec.UNSET


class TierProgress(msgspec.Struct):
    current: str
    qualifying_points: int
    next: str | None
    points_to_next: int | None
    held_until: datetime | None


class IdentityOut(msgspec.Struct):
    provider: str
    bound_at: datetime


class Member(msgspec.Struct):
    member_id: UUID
    status: str
    nickname: str | None
    phone_masked: str | None
    birthday: date | None
    referral_code: str
    channel: str | None
    created_at: datetime
    tier: TierProgress
    identities: list[IdentityOut]
