from __future__ import annotations

import msgspec
from litestar import Controller, get

from loyalty_common.auth import requires
from loyalty_common.http import problems
from loyalty_members.context import Ctx


class TierBenefitsOut(msgspec.Struct):
    birthday_bonus_points: int
    priority_service: bool
    early_access: bool


class TierOut(msgspec.Struct):
    name: str
    threshold: int
    multiplier: float
    benefits: TierBenefitsOut


class TierList(msgspec.Struct):
    items: list[TierOut]
    next_cursor: str | None = None
    qualifying_window_months: int = 12
    hold_months: int = 12


class TiersController(Controller):
    path = "/v1/tiers"
    tags = ["tiers"]
    guards = [requires("member")]

    @get("", summary="Tier definitions: name, threshold, multiplier, benefits", responses=problems())
    async def tiers(self, ctx: Ctx) -> TierList:
        policy = ctx.rules.tiers
        return TierList(
            items=[
                TierOut(
                    name=t.name,
                    threshold=t.threshold,
                    multiplier=float(t.multiplier),
                    benefits=TierBenefitsOut(
                        birthday_bonus_points=t.benefits.birthday_bonus_points,
                        priority_service=t.benefits.priority_service,
                        early_access=t.benefits.early_access,
                    ),
                )
                for t in policy.ladder
            ],
            qualifying_window_months=policy.qualifying_window_months,
            hold_months=policy.hold_months,
        )
