"""Outbound webhooks: signed deliveries to a local HTTP server started by the test, retries, redelivery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from loyalty_common.webhooks import SIGNATURE_HEADER, verify_signature
from tests.e2e.test_events import eventually
from tests.e2e.test_points_api import assert_problem
from tests.helpers import ADMIN_KEY, Api, headers, new_key


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server on loopback that records requests and answers with `status`."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            hdrs = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(hdrs.get("content-length", "0")))
            self.received.append((hdrs, body))
            reason = b"OK" if self.status < 400 else b"Error"
            writer.write(b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % (self.status, reason))
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    server = await asyncio.start_server(r.handle, "127.0.0.1", 0)
    r.port = server.sockets[0].getsockname()[1]
    async with server:
        yield r


async def register(api: Api, url: str, event_types: list[str]) -> dict[str, Any]:
    r = await api.points.post(
        "/v1/admin/points/webhooks",
        json={"url": url, "event_types": event_types},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_events_are_delivered_signed(api: Api, receiver: Receiver) -> None:
    endpoint = await register(api, f"http://127.0.0.1:{receiver.port}/hooks", ["points.earned"])
    assert endpoint["secret"].startswith("whsec_")
    member = await api.member_id()
    await api.purchase(member, 7_700)

    async def delivered() -> Any:
        return [b for h, b in receiver.received if msgspec.json.decode(b)["data"]["member_id"] == member]

    [body] = await eventually(delivered, within=5)
    hdrs = next(h for h, b in receiver.received if b == body)
    assert verify_signature(endpoint["secret"], hdrs[SIGNATURE_HEADER.lower()], body, now=int(time.time()))
    assert not verify_signature("whsec_wrong", hdrs[SIGNATURE_HEADER.lower()], body)
    event = msgspec.json.decode(body)
    assert event["event_type"] == "points.earned"
    assert event["data"]["points"] == 77
    assert hdrs["x-loyalty-event"] == "points.earned"

    async def recorded() -> Any:
        r = await api.points.get(
            f"/v1/admin/points/webhooks/deliveries/{hdrs['x-loyalty-delivery']}", headers=headers(ADMIN_KEY)
        )
        return r.json() if r.json()["status"] == "succeeded" else None

    delivery = await eventually(recorded, within=5)
    assert delivery["attempts"] == 1
    assert delivery["endpoint_id"] == endpoint["endpoint_id"]
    r = await api.points.get("/v1/admin/points/webhooks", headers=headers(ADMIN_KEY))
    listed = next(e for e in r.json()["items"] if e["endpoint_id"] == endpoint["endpoint_id"])
    assert listed["secret"] is None
    await api.points.patch(
        f"/v1/admin/points/webhooks/{endpoint['endpoint_id']}",
        json={"active": False},
        headers=headers(ADMIN_KEY, new_key()),
    )


async def test_failures_are_retried_logged_and_can_be_redelivered(api: Api, receiver: Receiver) -> None:
    receiver.status = 500
    endpoint = await register(api, f"http://127.0.0.1:{receiver.port}/hooks", ["points.adjusted"])
    member = await api.member_id()
    await api.adjust(member, 5, "webhook test")

    async def failed_once() -> Any:
        r = await api.points.get(
            "/v1/admin/points/webhooks/deliveries",
            params={"endpoint_id": endpoint["endpoint_id"]},
            headers=headers(ADMIN_KEY),
        )
        items = r.json()["items"]
        return items if items and items[0]["attempts"] >= 1 else None

    [delivery] = await eventually(failed_once, within=5)
    assert delivery["status"] == "pending"
    assert delivery["last_status_code"] == 500
    assert delivery["next_attempt_at"] is not None
    receiver.status = 200
    r = await api.points.post(
        f"/v1/admin/points/webhooks/deliveries/{delivery['delivery_id']}/redeliver", headers=headers(ADMIN_KEY)
    )
    assert r.status_code == 200

    async def succeeded() -> Any:
        r = await api.points.get(
            f"/v1/admin/points/webhooks/deliveries/{delivery['delivery_id']}", headers=headers(ADMIN_KEY)
        )
        return r.json() if r.json()["status"] == "succeeded" else None

    done = await eventually(succeeded, within=5)
    assert [a["status_code"] for a in done["attempt_log"]] == [500, 200]
    await api.points.patch(
        f"/v1/admin/points/webhooks/{endpoint['endpoint_id']}",
        json={"active": False},
        headers=headers(ADMIN_KEY, new_key()),
    )


async def test_members_events_reach_the_members_webhooks(api: Api, receiver: Receiver) -> None:
    r = await api.members.post(
        "/v1/admin/members/webhooks",
        json={"url": f"http://127.0.0.1:{receiver.port}/m", "event_types": ["member.registered"]},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert r.status_code == 201
    endpoint = r.json()
    member = await api.register()

    async def delivered() -> Any:
        return [b for _, b in receiver.received if msgspec.json.decode(b)["data"]["member_id"] == member["member_id"]]

    [body] = await eventually(delivered, within=5)
    assert b"phone" not in body or b'"has_phone"' in body
    await api.members.patch(
        f"/v1/admin/members/webhooks/{endpoint['endpoint_id']}",
        json={"active": False},
        headers=headers(ADMIN_KEY, new_key()),
    )


async def test_endpoint_validation(api: Api) -> None:
    for body in (
        {"url": "ftp://example.com/x", "event_types": ["points.earned"]},
        {"url": "https://example.com/x", "event_types": ["points.exploded"]},
        {"url": "https://example.com/x", "event_types": []},
    ):
        r = await api.points.post("/v1/admin/points/webhooks", json=body, headers=headers(ADMIN_KEY, new_key()))
        assert_problem(r, 400, "validation_error")
    r = await api.points.patch(
        "/v1/admin/points/webhooks/00000000-0000-4000-8000-000000000000",
        json={"active": False},
        headers=headers(ADMIN_KEY, new_key()),
    )
    assert_problem(r, 404, "not_found")
