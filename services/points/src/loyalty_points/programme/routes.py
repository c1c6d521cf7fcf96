from __future__ import annotations

import msgspec
from litestar import Controller, get

from loyalty_common.auth import requires
from loyalty_common.http import problems
from loyalty_common.rules import Prize, ProgrammeRules, RewardPrize
from loyalty_points.context import Ctx


class TierView(msgspec.Struct):
    name: str
    threshold: int
    multiplier: float
    benefits: dict[str, object]


class ActivityView(msgspec.Struct):
    kind: str
    points: int
    requires_moderation: bool


class RulesView(msgspec.Struct):
    timezone: str
    earning: dict[str, object]
    tiers: list[TierView]
    expiry: dict[str, object]
    activities: dict[str, object]
    invites: dict[str, object]
    offset: dict[str, object]
    leaderboards: dict[str, object]
    summary: list[str]


def _prize(prize: Prize) -> str:
    return f"reward {prize.reward_id} ×{prize.quantity}" if isinstance(prize, RewardPrize) else f"{prize} points"


def rules_view(rules: ProgrammeRules, timezone: str) -> RulesView:
    e, x, o, i, a, lb = (
        rules.earning,
        rules.expiry,
        rules.offset,
        rules.invites,
        rules.activities,
        rules.leaderboards,
    )
    offset_points_per_10_yuan = o.step_points * 1000 // o.step_fen
    summary = [
        f"Earn 1 point for every ¥{e.fen_per_point // 100} paid in cash, times your tier's multiplier, rounded down.",
        *(
            f"{t.name.capitalize()}: {t.threshold} points earned in the last {rules.tiers.qualifying_window_months} "
            f"months, ×{t.multiplier}"
            for t in rules.tiers.ladder
        ),
        f"A tier is kept at least {rules.tiers.hold_months} months once reached.",
        f"Points are valid for {x.validity_days} days: they expire at the end of the day, {x.validity_days} days "
        f"after they were earned. The points that expire soonest are always used first.",
        f"Invite a friend: {i.points} points when they register with a phone number "
        f"(up to {i.monthly_limit} friends a month).",
        *(f"Community {k.kind}: {k.points} points" for k in a.kinds),
        f"Community points are capped at {a.daily_cap} a day.",
        f"Pay with points: {offset_points_per_10_yuan} points = ¥10, in steps of {o.step_points} points, up to "
        f"{o.max_percent_of_order}% of an order.",
        f"Weekly and monthly leaderboards of points earned from {', '.join(lb.counted_kinds)}: "
        + ", ".join(f"#{place} {_prize(p)}" for place, p in enumerate(lb.prizes, start=1))
        + " when the period closes.",
    ]
    if e.pending_days:
        summary.insert(1, f"Purchase points become spendable {e.pending_days} days after payment.")
    return RulesView(
        timezone=timezone,
        earning={"fen_per_point": e.fen_per_point, "rounding": "down", "pending_days": e.pending_days},
        tiers=[
            TierView(t.name, t.threshold, float(t.multiplier), msgspec.to_builtins(t.benefits))
            for t in rules.tiers.ladder
        ],
        expiry={"validity_days": x.validity_days, "reminder_days": x.reminder_days},
        activities={
            "kinds": [ActivityView(k.kind, k.points, k.requires_moderation) for k in a.kinds],
            "daily_cap": a.daily_cap,
        },
        invites={"points": i.points, "monthly_limit": i.monthly_limit},
        offset={
            "step_points": o.step_points,
            "step_fen": o.step_fen,
            "max_percent_of_order": o.max_percent_of_order,
            "hold_minutes": o.hold_minutes,
        },
        leaderboards={"prizes": msgspec.to_builtins(lb.prizes), "counted_kinds": lb.counted_kinds},
        summary=summary,
    )


class RulesController(Controller):
    path = "/v1/points/rules"
    tags = ["programme"]
    guards = [requires("member")]

    @get("", summary="The programme's rules, as members may read them", responses=problems())
    async def rules(self, ctx: Ctx) -> RulesView:
        return rules_view(ctx.rules, ctx.settings.timezone_name)
