"""Weighted selection and the prize table's shape, as pure functions."""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence

from loyalty_common.errors import FieldError, ValidationFailed
from loyalty_points.lottery.schemas import PrizeCreate

SECURE = secrets.SystemRandom()
"""The one source of randomness for draws: the operating system's CSPRNG."""


def pick(weights: Sequence[int], roll: int) -> int:
    """The index of the prize a roll lands on: each prize owns a slice of [0, sum(weights)) as wide as its
    weight, in order, so a uniform roll wins each prize with probability weight / total."""
    if any(w <= 0 for w in weights) or not 0 <= roll < sum(weights):
        raise ValueError("weights must be positive and the roll within their total")
    for index, weight in enumerate(weights):
        if roll < weight:
            return index
        roll -= weight
    raise AssertionError("unreachable")


def roll(total: int, rng: random.Random = SECURE) -> int:
    """A uniform integer in [0, total)."""
    return rng.randrange(total)


def draws_left(daily_limit: int | None, drawn_today: int) -> int | None:
    return None if daily_limit is None else max(0, daily_limit - drawn_today)


def check_prizes(prizes: Sequence[PrizeCreate]) -> None:
    """Each prize says what it gives: `points` for a points prize, `reward_id` for a reward, neither for
    nothing."""
    errors: list[FieldError] = []
    for i, prize in enumerate(prizes):
        at = f"prizes[{i}]"
        if (prize.kind == "points") != (prize.points is not None):
            errors.append(FieldError(f"{at}.points", "is required for a points prize and only for one"))
        if (prize.kind == "reward") != (prize.reward_id is not None):
            errors.append(FieldError(f"{at}.reward_id", "is required for a reward prize and only for one"))
    if errors:
        raise ValidationFailed(errors)
