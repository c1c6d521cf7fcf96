"""Both services started as in production (granian, separate processes) on the test database, driven over
real HTTP with truly parallel requests."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from loyalty_common.settings import Settings
from tests.helpers import ADMIN_KEY, EARN_KEY, MEMBER_KEY, headers, new_key, unique


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers(settings: Settings) -> Iterator[dict[str, str]]:
    ports = {"points": free_port(), "members": free_port()}
    env = {
        **os.environ,
        "LOYALTY_ENV": "test",
        "DATABASE_URL": settings.require_database_url(),
        "LOYALTY_API_KEYS": f"mini:{MEMBER_KEY}:member,orders:{EARN_KEY}:earn,ops:{ADMIN_KEY}:admin",
        "LOYALTY_PHONE_KEYS": "t1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "LOYALTY_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "LOYALTY_POINTS_PORT": str(ports["points"]),
        "LOYALTY_MEMBERS_PORT": str(ports["members"]),
        "LOYALTY_DB_POOL_SIZE": "10",
        "LOYALTY_LOG_LEVEL": "warning",
    }
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "loyalty_common.cli", "serve", name, "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for name in ports
    }
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    deadline = time.monotonic() + 60  # a loaded CI machine starts servers slowly
    try:
        for name, url in urls.items():
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if processes[name].poll() is not None or time.monotonic() > deadline:
                    # Kill before reading: reading the pipe of a server still starting would wait forever.
                    processes[name].kill()
                    try:
                        _, err = processes[name].communicate(timeout=5)
                    except subprocess.TimeoutExpired:
                        err = b""
                    raise RuntimeError(f"{name} did not start: {(err or b'').decode()[-2000:]}")
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def test_register_earn_and_parallel_load_over_real_http(servers: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"{servers['members']}/v1/members",
            json={
                "identity": {"provider": "store", "external_id": unique("card")},
                "consents": [{"purpose": "membership", "policy_version": "2024-06"}],
            },
            headers=headers(MEMBER_KEY, new_key()),
        )
        assert r.status_code == 201, r.text
        member = r.json()["member_id"]

        async def purchase(amount: int) -> int:
            body = {"member_id": member, "order_id": unique("o"), "amount_fen": amount, "paid_at": _now()}
            resp = await client.post(
                f"{servers['points']}/v1/points/purchases", json=body, headers=headers(EARN_KEY, new_key())
            )
            return int(resp.status_code)

        statuses = await asyncio.gather(*(purchase(1_000) for _ in range(20)))
        assert statuses == [201] * 20

        key = new_key()
        body = {"member_id": member, "order_id": unique("o"), "amount_fen": 5_000, "paid_at": _now()}
        replays = await asyncio.gather(
            *(
                client.post(f"{servers['points']}/v1/points/purchases", json=body, headers=headers(EARN_KEY, key))
                for _ in range(20)
            )
        )
        assert {r.status_code for r in replays} == {201}
        assert len({r.content for r in replays}) == 1

        r = await client.get(f"{servers['points']}/v1/points/accounts/{member}", headers=headers(MEMBER_KEY))
        assert r.json()["available"] == 20 * 10 + 50
        r = await client.get(f"{servers['points']}/v1/admin/points/ledger/verify", headers=headers(ADMIN_KEY))
        assert r.json()["ok"] is True
        r = await client.get(f"{servers['points']}/schema/openapi.json")
        assert "/v1/points/purchases" in r.json()["paths"]
        r = await client.get(f"{servers['members']}/healthz")
        assert r.json() == {"status": "ok"}
        assert r.headers.get("x-request-id")


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
