"""Tier rules as pure functions."""

from __future__ import annotations

from dataclasses import dataclass

from loyalty_common.rules import TIER_ORDER, ProgrammeRules


@dataclass(frozen=True)
class Progress:
    next: str | None
    points_to_next: int | None


def progress(rules: ProgrammeRules, current: str, qualifying_points: int) -> Progress:
    """The tier above the current one and the qualifying points still needed to reach it."""
    ladder = rules.tiers.ladder
    index = TIER_ORDER.index(current)
    if index + 1 >= len(ladder):
        return Progress(None, None)
    nxt = ladder[index + 1]
    return Progress(nxt.name, max(0, nxt.threshold - qualifying_points))


def tier_for(rules: ProgrammeRules, qualifying_points: int) -> str:
    """The highest tier whose threshold the qualifying points reach."""
    reached = [t.name for t in rules.tiers.ladder if qualifying_points >= t.threshold]
    return reached[-1] if reached else TIER_ORDER[0]
