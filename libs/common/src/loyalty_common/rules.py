"""The programme's rules: the brand's defaults from the playbook, overridable by a TOML file (LOYALTY_RULES_FILE).

Everything a brand may tune lives here, so a rule is changed in one place and read by both services.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import msgspec

TIER_ORDER = ("regular", "silver", "gold", "diamond")


class TierBenefits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    birthday_bonus_points: int = 0
    priority_service: bool = False
    early_access: bool = False


class TierRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    threshold: Annotated[int, msgspec.Meta(ge=0)]
    multiplier: Decimal
    benefits: TierBenefits = TierBenefits()


def _default_tiers() -> list[TierRule]:
    return [
        TierRule("regular", 0, Decimal("1.0"), TierBenefits()),
        TierRule("silver", 1_000, Decimal("1.2"), TierBenefits(birthday_bonus_points=100)),
        TierRule("gold", 5_000, Decimal("1.5"), TierBenefits(birthday_bonus_points=200, priority_service=True)),
        TierRule(
            "diamond",
            20_000,
            Decimal("2.0"),
            TierBenefits(birthday_bonus_points=500, priority_service=True, early_access=True),
        ),
    ]


class TierPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ladder: list[TierRule] = msgspec.field(default_factory=_default_tiers)
    qualifying_window_months: int = 12
    hold_months: int = 12
    qualifying_kinds: list[str] = msgspec.field(default_factory=lambda: ["purchase", "activity", "invite"])


class EarningRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fen_per_point: Annotated[int, msgspec.Meta(ge=1)] = 100  # 1 point per ¥1 paid in cash
    max_amount_fen: int = 10_000_000_00  # ¥10,000,000: a sane ceiling for one order
    pending_days: Annotated[int, msgspec.Meta(ge=0)] = 0  # return window before purchase points are spendable


class ActivityKind(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: str
    points: Annotated[int, msgspec.Meta(ge=1)]
    requires_moderation: bool = False


def _default_activities() -> list[ActivityKind]:
    return [ActivityKind("discussion", 10), ActivityKind("answer", 10), ActivityKind("share", 5)]


class ActivityRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kinds: list[ActivityKind] = msgspec.field(default_factory=_default_activities)
    daily_cap: Annotated[int, msgspec.Meta(ge=0)] = 50


class InviteRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    points: Annotated[int, msgspec.Meta(ge=1)] = 50
    monthly_limit: Annotated[int, msgspec.Meta(ge=0)] = 20


class OffsetRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    step_points: Annotated[int, msgspec.Meta(ge=1)] = 10  # 100 points = ¥10, so 10 points per ¥1 step
    step_fen: Annotated[int, msgspec.Meta(ge=1)] = 100
    max_percent_of_order: Annotated[int, msgspec.Meta(ge=1, le=100)] = 50
    hold_minutes: Annotated[int, msgspec.Meta(ge=1)] = 15


class ExpiryRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    validity_days: Annotated[int, msgspec.Meta(ge=1)] = 365
    reminder_days: list[int] = msgspec.field(default_factory=lambda: [7, 1])


class RewardPrize(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A leaderboard prize that is a reward from the catalog instead of points (`{reward_id = "...", quantity = 1}`
    in the rules file). Settlement records the winner's entitlement to it."""

    reward_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, msgspec.Meta(ge=1)] = 1


Prize = Annotated[int, msgspec.Meta(ge=1)] | RewardPrize
"""A place's prize: bonus points, or a reward."""


class LeaderboardRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prizes: list[Prize] = msgspec.field(default_factory=lambda: [500, 300, 100])
    """By place: the first entry is the winner's prize."""
    counted_kinds: list[str] = msgspec.field(default_factory=lambda: ["purchase", "activity", "invite"])
    """Entry kinds whose points make a score; a clawback lowers it when the kind it claws back is counted."""


class BusinessTimeRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_future_seconds: int = 300
    max_age_days: int = 90


class ProgrammeRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    earning: EarningRules = EarningRules()
    tiers: TierPolicy = TierPolicy()
    activities: ActivityRules = ActivityRules()
    invites: InviteRules = InviteRules()
    offset: OffsetRules = OffsetRules()
    expiry: ExpiryRules = ExpiryRules()
    leaderboards: LeaderboardRules = LeaderboardRules()
    business_time: BusinessTimeRules = BusinessTimeRules()

    def tier(self, name: str) -> TierRule:
        for rule in self.tiers.ladder:
            if rule.name == name:
                return rule
        return self.tiers.ladder[0]

    def activity(self, kind: str) -> ActivityKind | None:
        return next((a for a in self.activities.kinds if a.kind == kind), None)


def load_rules(path: str | None) -> ProgrammeRules:
    """The defaults, or the brand's TOML file when LOYALTY_RULES_FILE names one."""
    if not path:
        return ProgrammeRules()
    raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    rules = msgspec.convert(raw, ProgrammeRules, strict=False)
    names = [t.name for t in rules.tiers.ladder]
    if tuple(names) != TIER_ORDER:
        raise ValueError(f"the tier ladder must be {', '.join(TIER_ORDER)} in that order, got {names}")
    thresholds = [t.threshold for t in rules.tiers.ladder]
    if thresholds != sorted(thresholds) or thresholds[0] != 0:
        raise ValueError("tier thresholds must start at 0 and rise")
    return rules
