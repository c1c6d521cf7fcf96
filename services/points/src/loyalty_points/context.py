"""What the points service's handlers, jobs and commands share: settings, clock, rules and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias
from zoneinfo import ZoneInfo

from litestar.di import NamedDependency

from loyalty_common.audit import Audit
from loyalty_common.clock import Clock
from loyalty_common.idempotency import Idempotency
from loyalty_common.ledger import LedgerStore
from loyalty_common.outbox import Outbox
from loyalty_common.rules import ProgrammeRules
from loyalty_common.settings import Settings
from loyalty_points import schema


@dataclass(frozen=True)
class PointsContext:
    settings: Settings
    clock: Clock
    ledger: LedgerStore
    idempotency: Idempotency
    outbox: Outbox
    audit: Audit

    @property
    def rules(self) -> ProgrammeRules:
        return self.settings.rules

    @property
    def tz(self) -> ZoneInfo:
        return self.settings.timezone


def build_context(settings: Settings, clock: Clock) -> PointsContext:
    return PointsContext(
        settings=settings,
        clock=clock,
        ledger=LedgerStore(schema.ledger),
        idempotency=Idempotency(schema.common, clock),
        outbox=Outbox(schema.common, clock),
        audit=Audit(schema.common, clock),
    )


Ctx: TypeAlias = NamedDependency[PointsContext]
"""How a route handler asks for the service's context (`ctx: Ctx`)."""
