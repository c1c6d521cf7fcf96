"""What the tests say to the services: keys, headers and the calls a mini-program backend or an order system
makes, over the apps' HTTP interface."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from loyalty_common.clock import TravelClock

PERSONAL_DATA: set[str] = set()
"""Phone numbers, identity external ids and nicknames the tests used: none may appear in a log line."""
PROBLEM = "application/problem+json"

MEMBER_KEY = "test-mini-key"
EARN_KEY = "test-orders-key"
ADMIN_KEY = "test-ops-key"


def headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    h = {"Authorization": f"Bearer {key}"}
    if idempotency_key is not None:
        h["Idempotency-Key"] = idempotency_key
    return h


def new_key() -> str:
    return uuid.uuid4().hex


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def external_id() -> str:
    value = unique("o6")
    PERSONAL_DATA.add(value)
    return value


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    """The response is problem+json with this status and stable code; returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    return body


def random_cn_mobile() -> str:
    """A valid-looking Chinese mobile number (139 range), unique enough for a test run."""
    number = "+86139" + f"{uuid.uuid4().int % 10**8:08d}"
    PERSONAL_DATA.add(number)
    PERSONAL_DATA.add(number[3:])
    return number


class Api:
    def __init__(self, points: Any, members: Any, clock: TravelClock) -> None:
        self.points = points
        self.members = members
        self.clock = clock

    def now(self) -> str:
        return self.clock.now().astimezone(UTC).isoformat()

    async def register(self, **fields: Any) -> dict[str, Any]:
        for field in ("nickname",):
            if isinstance(fields.get(field), str) and len(fields[field]) > 3:
                PERSONAL_DATA.add(fields[field])
        body: dict[str, Any] = {
            "identity": {"provider": "wechat_mini", "external_id": external_id()},
            "consents": [{"purpose": "membership", "policy_version": "2024-06"}],
            **fields,
        }
        r = await self.members.post("/v1/members", json=body, headers=headers(MEMBER_KEY, new_key()))
        assert r.status_code == 201, r.text
        member: dict[str, Any] = r.json()
        return member

    async def member_id(self) -> str:
        return str((await self.register())["member_id"])

    async def purchase(
        self,
        member_id: str,
        amount_fen: int,
        *,
        order_id: str | None = None,
        paid_at: datetime | None = None,
        key: str | None = None,
        expect: int = 201,
    ) -> dict[str, Any]:
        body = {
            "member_id": member_id,
            "order_id": order_id or unique("ord"),
            "amount_fen": amount_fen,
            "paid_at": (paid_at or self.clock.now()).isoformat(),
        }
        r = await self.points.post("/v1/points/purchases", json=body, headers=headers(EARN_KEY, key or new_key()))
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def refund(
        self,
        member_id: str,
        order_id: str,
        amount_fen: int,
        *,
        refund_id: str | None = None,
        expect: int = 201,
    ) -> dict[str, Any]:
        body = {
            "member_id": member_id,
            "order_id": order_id,
            "refund_id": refund_id or unique("rf"),
            "amount_fen": amount_fen,
        }
        r = await self.points.post("/v1/points/refunds", json=body, headers=headers(EARN_KEY, new_key()))
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def adjust(self, member_id: str, points: int, reason: str = "test", *, expect: int = 201) -> dict[str, Any]:
        r = await self.points.post(
            "/v1/admin/points/adjustments",
            json={"member_id": member_id, "points": points, "reason": reason},
            headers=headers(ADMIN_KEY, new_key()),
        )
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def account(self, member_id: str) -> dict[str, Any]:
        r = await self.points.get(f"/v1/points/accounts/{member_id}", headers=headers(MEMBER_KEY))
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def entries(self, member_id: str, **params: Any) -> list[dict[str, Any]]:
        r = await self.points.get(
            f"/v1/points/accounts/{member_id}/entries", params=params, headers=headers(MEMBER_KEY)
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def verify(self) -> dict[str, Any]:
        r = await self.points.get("/v1/admin/points/ledger/verify", headers=headers(ADMIN_KEY))
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    async def run_job(self, job: str, as_of: datetime | None = None) -> dict[str, Any]:
        body = {"as_of": as_of.isoformat()} if as_of else {}
        r = await self.points.post(f"/v1/admin/points/jobs/{job}/run", json=body, headers=headers(ADMIN_KEY))
        assert r.status_code == 201, r.text
        result: dict[str, Any] = r.json()
        return result

    # -- spending: rewards, redemptions, lotteries, cash offset -------------------------------------------
    async def create_reward(self, *, expect: int = 201, **fields: Any) -> dict[str, Any]:
        body = {"name": unique("Reward"), "points_cost": 100, **fields}
        r = await self.points.post("/v1/admin/points/rewards", json=body, headers=headers(ADMIN_KEY, new_key()))
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def redeem(
        self, member_id: str, reward_id: str, quantity: int = 1, *, key: str | None = None, expect: int = 201
    ) -> dict[str, Any]:
        r = await self.points.post(
            "/v1/points/redemptions",
            json={"member_id": member_id, "reward_id": reward_id, "quantity": quantity},
            headers=headers(MEMBER_KEY, key or new_key()),
        )
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def cancel_redemption(self, redemption_id: str, *, expect: int = 200) -> dict[str, Any]:
        r = await self.points.post(
            f"/v1/points/redemptions/{redemption_id}/cancel", headers=headers(MEMBER_KEY, new_key())
        )
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def hold(
        self,
        member_id: str,
        points: int,
        order_amount_fen: int = 100_000,
        *,
        order_id: str | None = None,
        key: str | None = None,
        expect: int = 201,
    ) -> dict[str, Any]:
        body = {
            "member_id": member_id,
            "order_id": order_id or unique("ord"),
            "order_amount_fen": order_amount_fen,
            "points": points,
        }
        r = await self.points.post("/v1/points/offsets", json=body, headers=headers(MEMBER_KEY, key or new_key()))
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def settle(self, offset_id: str, action: str, *, expect: int = 200) -> dict[str, Any]:
        r = await self.points.post(f"/v1/points/offsets/{offset_id}/{action}", headers=headers(MEMBER_KEY, new_key()))
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def refund_offset(
        self, offset_id: str, amount_fen: int, *, refund_id: str | None = None, expect: int = 201
    ) -> dict[str, Any]:
        r = await self.points.post(
            f"/v1/points/offsets/{offset_id}/refund",
            json={"refund_id": refund_id or unique("rf"), "amount_fen": amount_fen},
            headers=headers(MEMBER_KEY, new_key()),
        )
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def create_lottery(self, prizes: list[dict[str, Any]], *, expect: int = 201, **fields: Any) -> dict[str, Any]:
        body = {"name": unique("Lottery"), "cost_points": 10, "prizes": prizes, **fields}
        r = await self.points.post("/v1/admin/points/lotteries", json=body, headers=headers(ADMIN_KEY, new_key()))
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result

    async def draw(self, lottery_id: str, member_id: str, *, expect: int = 201) -> dict[str, Any]:
        r = await self.points.post(
            f"/v1/points/lotteries/{lottery_id}/draws",
            json={"member_id": member_id},
            headers=headers(MEMBER_KEY, new_key()),
        )
        assert r.status_code == expect, r.text
        result: dict[str, Any] = r.json()
        return result
