"""Each service serves an OpenAPI document that lists every contract path with its request and response
schemas."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api

POINTS_PATHS = {
    ("get", "/v1/points/rules"),
    ("get", "/v1/points/accounts/{member_id}"),
    ("get", "/v1/points/accounts/{member_id}/entries"),
    ("get", "/v1/points/accounts/{member_id}/expiring"),
    ("post", "/v1/points/purchases"),
    ("post", "/v1/points/refunds"),
    ("post", "/v1/admin/points/adjustments"),
    ("post", "/v1/admin/points/jobs/{job}/run"),
    ("get", "/v1/admin/points/ledger/verify"),
    ("get", "/v1/admin/points/reports/summary"),
    ("get", "/v1/points/leaderboards/{board}"),
    ("get", "/v1/points/leaderboards/{board}/members/{member_id}"),
    # additions beyond the contract
    ("post", "/v1/admin/points/leaderboards/exclusions"),
    ("get", "/v1/admin/points/leaderboards/exclusions"),
    ("delete", "/v1/admin/points/leaderboards/exclusions/{member_id}"),
    ("get", "/v1/admin/points/reports/liability"),
    ("get", "/v1/admin/points/reports/expiring"),
    ("get", "/v1/admin/points/reports/daily"),
    ("get", "/v1/admin/points/reports/tiers"),
}
MEMBERS_PATHS = {
    ("post", "/v1/members"),
    ("get", "/v1/members/{member_id}"),
    ("get", "/v1/members/lookup"),
    ("patch", "/v1/members/{member_id}"),
    ("post", "/v1/members/{member_id}/identities"),
    ("get", "/v1/members/{member_id}/referrals"),
    ("post", "/v1/members/{member_id}/consents"),
    ("get", "/v1/tiers"),
}


@pytest.mark.parametrize(("service", "expected"), [("points", POINTS_PATHS), ("members", MEMBERS_PATHS)])
async def test_openapi_lists_the_contract(api: Api, service: str, expected: set[tuple[str, str]]) -> None:
    client = api.points if service == "points" else api.members
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    assert doc["openapi"].startswith("3.")
    operations = {(method, path): op for path, item in doc["paths"].items() for method, op in item.items()}
    missing = expected - set(operations)
    assert not missing, f"missing from the OpenAPI document: {missing}"
    for (method, path), op in operations.items():
        if (method, path) not in expected:
            continue
        success = [code for code in op["responses"] if code.startswith("2")]
        assert success, (method, path)
        assert any("content" in op["responses"][code] for code in success), (method, path)
        if method in ("post", "patch") and not path.endswith("/run"):
            assert "requestBody" in op, (method, path)
        for status in ("400", "401", "403"):
            assert status in op["responses"] or method == "get", (method, path, status)
    assert doc["components"]["schemas"], "schemas are documented"
