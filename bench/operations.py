"""The operations the benchmark performs, as the HTTP requests of API.md: one purchase, one account read, one
page of entries, expiring points, leaderboard reads, an offset hold and its confirmation, a redemption.

The load generator and the SQL capture build their requests here, so pgbench replays the statements of exactly
the requests the load generator sends. An operation is a list of steps; a step may use the JSON answer of the
step before it (the confirmation uses the hold's `offset_id`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

EARN_KEY = "bench-orders-key-0123456789"
MEMBER_KEY = "bench-mini-key-0123456789"
ADMIN_KEY = "bench-ops-key-0123456789"
API_KEYS = f"bench-orders:{EARN_KEY}:earn,bench-mini:{MEMBER_KEY}:member,bench-ops:{ADMIN_KEY}:admin"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    api_key: str
    expect: int
    body: bytes | None = None
    idempotency_key: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        return headers


Step = Callable[[Any], Request]
"""Builds a request from the JSON answer of the previous step (None for the first step)."""


@dataclass
class Context:
    """What an operation may use: a unique tag for ids, the business time, and a random source."""

    tag: str
    paid_at: str
    random: random.Random
    reward_id: str | None = None

    @staticmethod
    def now() -> str:
        return datetime.now(UTC).isoformat()


def _json(value: dict[str, Any]) -> bytes:
    return msgspec.json.encode(value)


def purchase(member: UUID, n: int, ctx: Context) -> list[Step]:
    order = f"{ctx.tag}-o{n}"
    body = _json(
        {"member_id": str(member), "order_id": order, "amount_fen": ctx.random.randint(1_000, 50_000),
         "paid_at": ctx.paid_at}
    )  # fmt: skip
    return [lambda _: Request("POST", "/v1/points/purchases", EARN_KEY, 201, body, f"{ctx.tag}-k{n}")]


def account(member: UUID, n: int, ctx: Context) -> list[Step]:
    return [lambda _: Request("GET", f"/v1/points/accounts/{member}", MEMBER_KEY, 200)]


def entries(member: UUID, n: int, ctx: Context) -> list[Step]:
    return [lambda _: Request("GET", f"/v1/points/accounts/{member}/entries?limit=20", MEMBER_KEY, 200)]


def expiring(member: UUID, n: int, ctx: Context) -> list[Step]:
    return [lambda _: Request("GET", f"/v1/points/accounts/{member}/expiring?within_days=90", MEMBER_KEY, 200)]


def leaderboard(member: UUID, n: int, ctx: Context) -> list[Step]:
    if n % 2:
        return [lambda _: Request("GET", "/v1/points/leaderboards/weekly?limit=10", MEMBER_KEY, 200)]
    return [lambda _: Request("GET", f"/v1/points/leaderboards/weekly/members/{member}", MEMBER_KEY, 200)]


def offset_hold_confirm(member: UUID, n: int, ctx: Context) -> list[Step]:
    """API.md cash offset: hold 100 points (¥10) on a ¥200 order, then confirm on payment."""
    body = _json({"member_id": str(member), "order_id": f"{ctx.tag}-c{n}", "order_amount_fen": 20_000, "points": 100})
    return [
        lambda _: Request("POST", "/v1/points/offsets", MEMBER_KEY, 201, body, f"{ctx.tag}-h{n}"),
        lambda held: Request(
            "POST", f"/v1/points/offsets/{held['offset_id']}/confirm", MEMBER_KEY, 200, b"{}", f"{ctx.tag}-f{n}"
        ),
    ]


def redemption(member: UUID, n: int, ctx: Context) -> list[Step]:
    body = _json({"member_id": str(member), "reward_id": ctx.reward_id, "quantity": 1})
    return [lambda _: Request("POST", "/v1/points/redemptions", MEMBER_KEY, 201, body, f"{ctx.tag}-r{n}")]


OPERATIONS: dict[str, Callable[[UUID, int, Context], list[Step]]] = {
    "purchase": purchase,
    "account": account,
    "entries": entries,
    "expiring": expiring,
    "leaderboard": leaderboard,
    "offset": offset_hold_confirm,
    "redemption": redemption,
}

REQUIRED_PATHS: dict[str, tuple[str, ...]] = {
    "purchase": ("/v1/points/purchases",),
    "account": ("/v1/points/accounts/{member_id}",),
    "entries": ("/v1/points/accounts/{member_id}/entries",),
    "expiring": ("/v1/points/accounts/{member_id}/expiring",),
    "leaderboard": ("/v1/points/leaderboards/{board}", "/v1/points/leaderboards/{board}/members/{member_id}"),
    "offset": ("/v1/points/offsets", "/v1/points/offsets/{offset_id}/confirm"),
    "redemption": ("/v1/points/redemptions", "/v1/admin/points/rewards"),
}
"""The OpenAPI paths an operation needs; an operation whose paths the points service lacks is skipped."""


def reward_request(tag: str) -> Request:
    """An unlimited, cheap reward for the redemption operation (API.md admin rewards)."""
    body = _json({"name": f"Bench coupon {tag}", "points_cost": 50, "stock": None, "active": True})
    return Request("POST", "/v1/admin/points/rewards", ADMIN_KEY, 201, body, f"{tag}-reward")
