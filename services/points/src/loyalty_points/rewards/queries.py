"""Reads of the rewards catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, tuple_

from loyalty_common.db import Tx
from loyalty_common.errors import RewardNotFound
from loyalty_points import schema
from loyalty_points.ids import parse_id
from loyalty_points.rewards.rules import Terms

rewards = schema.rewards


def parse_reward_id(raw: str) -> UUID:
    return parse_id(raw, RewardNotFound(f"No reward {raw!r}"))


async def load(tx: Tx, reward_id: UUID, *, for_update: bool = False) -> Any:
    query = select(rewards).where(rewards.c.reward_id == reward_id)
    if for_update:
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    if row is None:
        raise RewardNotFound(f"No reward {reward_id}")
    return row


async def page(tx: Tx, *, active_only: bool, before: tuple[datetime, UUID] | None, limit: int) -> list[Any]:
    """Rewards newest first; one more than `limit` so the caller knows whether there is a next page."""
    query = select(rewards).order_by(rewards.c.created_at.desc(), rewards.c.reward_id.desc()).limit(limit + 1)
    if active_only:
        query = query.where(rewards.c.active)
    if before is not None:
        query = query.where(tuple_(rewards.c.created_at, rewards.c.reward_id) < tuple_(*before))
    return list(await tx.execute(query))


def terms(row: Any) -> Terms:
    return Terms(
        points_cost=row.points_cost,
        stock=row.stock,
        per_member_limit=row.per_member_limit,
        min_tier=row.min_tier,
        active=row.active,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )
