"""What the members service's handlers, jobs and commands share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias
from zoneinfo import ZoneInfo

from litestar.di import NamedDependency

from loyalty_common.audit import Audit
from loyalty_common.clock import Clock
from loyalty_common.idempotency import Idempotency
from loyalty_common.outbox import Outbox
from loyalty_common.rules import ProgrammeRules
from loyalty_common.settings import Settings
from loyalty_members import schema
from loyalty_members.privacy.phones import PhoneVault


@dataclass(frozen=True)
class MembersContext:
    settings: Settings
    clock: Clock
    idempotency: Idempotency
    outbox: Outbox
    audit: Audit
    phones: PhoneVault

    @property
    def rules(self) -> ProgrammeRules:
        return self.settings.rules

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.timezone


def build_context(settings: Settings, clock: Clock) -> MembersContext:
    return MembersContext(
        settings=settings,
        clock=clock,
        idempotency=Idempotency(schema.common, clock),
        outbox=Outbox(schema.common, clock),
        audit=Audit(schema.common, clock),
        phones=PhoneVault(settings.phone_keys, settings.blind_index_key),
    )


Ctx: TypeAlias = NamedDependency[MembersContext]
"""How a route handler asks for the service's context (`ctx: Ctx`)."""
