from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from loyalty_members.members.schemas import PolicyVersion, Purpose


class ConsentRequest(msgspec.Struct, forbid_unknown_fields=True):
    purpose: Purpose
    policy_version: PolicyVersion
    granted: bool


class Consent(msgspec.Struct):
    consent_id: UUID
    purpose: str
    policy_version: str
    granted: bool
    source: str
    recorded_at: datetime


class ConsentState(msgspec.Struct):
    purpose: str
    granted: bool
    policy_version: str
    recorded_at: datetime


class ConsentHistory(msgspec.Struct):
    current: list[ConsentState]
    items: list[Consent]
    next_cursor: str | None = None
