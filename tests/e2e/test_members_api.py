"""End-to-end tests of the members service: registration, profile, lookup, OneID identities, consents, tiers."""

from __future__ import annotations

from typing import Any

from tests.e2e.test_points_api import assert_problem
from tests.helpers import EARN_KEY, MEMBER_KEY, Api, external_id, headers, new_key, random_cn_mobile, unique

CONSENT = [{"purpose": "membership", "policy_version": "2024-06"}]


def registration(**fields: Any) -> dict[str, Any]:
    return {"identity": {"provider": "wechat_mini", "external_id": external_id()}, "consents": CONSENT, **fields}


async def register(api: Api, body: dict[str, Any], key: str | None = None) -> Any:
    return await api.members.post("/v1/members", json=body, headers=headers(MEMBER_KEY, key or new_key()))


async def test_register_returns_the_member_body(api: Api) -> None:
    phone = random_cn_mobile()
    r = await register(api, registration(phone=phone, nickname="小明", birthday="1990-05-01", channel="package_card"))
    assert r.status_code == 201, r.text
    member = r.json()
    assert member["status"] == "active"
    assert member["nickname"] == "小明"
    assert member["birthday"] == "1990-05-01"
    assert member["phone_masked"] == phone[3:6] + "****" + phone[-4:]
    assert phone not in r.text and phone[3:] not in r.text
    assert len(member["referral_code"]) == 6
    assert member["tier"] == {
        "current": "regular",
        "qualifying_points": 0,
        "next": "silver",
        "points_to_next": 1000,
        "held_until": None,
    }
    assert member["created_at"].endswith("+08:00")
    got = await api.members.get(f"/v1/members/{member['member_id']}", headers=headers(MEMBER_KEY))
    assert got.json() == member


async def test_registration_is_idempotent_on_the_identity(api: Api) -> None:
    body = registration()
    key = new_key()
    first = await register(api, body, key)
    replay = await register(api, body, key)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    again = await register(api, body)
    assert again.status_code == 200
    assert again.json()["member_id"] == first.json()["member_id"]
    other = await register(api, dict(body, nickname="different"), key)
    assert_problem(other, 422, "idempotency_key_reused")


async def test_registration_errors(api: Api) -> None:
    r = await register(api, registration(consents=[]))
    assert_problem(r, 422, "consent_required")
    r = await register(api, registration(consents=[{"purpose": "marketing", "policy_version": "1"}]))
    assert_problem(r, 422, "consent_required")
    r = await register(api, registration(consents=[{"purpose": "membership", "policy_version": "1", "granted": False}]))
    assert_problem(r, 422, "consent_required")
    r = await register(api, registration(phone="12345"))
    assert_problem(r, 422, "invalid_phone")
    phone = random_cn_mobile()
    assert (await register(api, registration(phone=phone))).status_code == 201
    r = await register(api, registration(phone=phone))
    assert_problem(r, 409, "phone_taken")
    for bad in (
        {"consents": CONSENT},
        registration(identity={"provider": "weibo", "external_id": "x"}),
        registration(identity={"provider": "jd", "external_id": ""}),
        registration(birthday="1990-13-01"),
        registration(nickname="x" * 33),
        registration(extra=True),
    ):
        r = await register(api, bad)
        assert_problem(r, 400, "validation_error")


async def test_an_invalid_referral_code_still_registers_and_records_a_rejected_referral(api: Api) -> None:
    body = registration(phone=random_cn_mobile(), referral_code="ZZZZZZ")
    r = await register(api, body)
    problem = assert_problem(r, 422, "invalid_referral_code")
    member_id = problem["member_id"]
    assert problem["member"]["member_id"] == member_id
    got = await api.members.get(f"/v1/members/{member_id}", headers=headers(MEMBER_KEY))
    assert got.status_code == 200
    again = await register(api, body)
    assert again.status_code == 200
    assert again.json()["member_id"] == member_id


async def test_a_valid_referral_code_is_recorded_for_the_inviter(api: Api) -> None:
    inviter = await api.register()
    invitee = await api.register(referral_code=inviter["referral_code"].lower(), phone=random_cn_mobile())
    r = await api.members.get(f"/v1/members/{inviter['member_id']}/referrals", headers=headers(MEMBER_KEY))
    [referral] = r.json()["items"]
    assert referral["member_id"] == invitee["member_id"]
    assert referral["status"] in ("pending", "rewarded")


async def test_lookup_by_identity_and_by_phone(api: Api) -> None:
    phone = random_cn_mobile()
    body = registration(phone=phone)
    member = (await register(api, body)).json()
    identity = body["identity"]
    r = await api.members.get("/v1/members/lookup", params=identity, headers=headers(MEMBER_KEY))
    assert r.json()["member_id"] == member["member_id"]
    for given in (phone, phone[3:], phone.replace("+", " ")):
        r = await api.members.get("/v1/members/lookup", params={"phone": given}, headers=headers(MEMBER_KEY))
        assert r.status_code == 200, given
        assert r.json()["member_id"] == member["member_id"]
    r = await api.members.get("/v1/members/lookup", params={"phone": random_cn_mobile()}, headers=headers(MEMBER_KEY))
    assert_problem(r, 404, "member_not_found")
    r = await api.members.get(
        "/v1/members/lookup", params={"provider": "jd", "external_id": "nobody"}, headers=headers(MEMBER_KEY)
    )
    assert_problem(r, 404, "member_not_found")
    r = await api.members.get("/v1/members/lookup", headers=headers(MEMBER_KEY))
    assert_problem(r, 400, "validation_error")


async def test_patch_profile(api: Api) -> None:
    other_phone = random_cn_mobile()
    await api.register(phone=other_phone)
    member = await api.register(nickname="Alice", phone=random_cn_mobile())
    url = f"/v1/members/{member['member_id']}"
    new_phone = random_cn_mobile()
    r = await api.members.patch(
        url,
        json={"nickname": "Bob", "phone": new_phone, "birthday": "1988-02-29"},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert r.status_code == 200, r.text
    assert r.json()["nickname"] == "Bob"
    assert r.json()["phone_masked"].endswith(new_phone[-4:])
    assert r.json()["birthday"] == "1988-02-29"
    r = await api.members.get("/v1/members/lookup", params={"phone": new_phone}, headers=headers(MEMBER_KEY))
    assert r.json()["member_id"] == member["member_id"]
    r = await api.members.patch(url, json={"phone": other_phone}, headers=headers(MEMBER_KEY, new_key()))
    assert_problem(r, 409, "phone_taken")
    r = await api.members.patch(url, json={"phone": "000"}, headers=headers(MEMBER_KEY, new_key()))
    assert_problem(r, 422, "invalid_phone")
    r = await api.members.patch(url, json={"nickname": None}, headers=headers(MEMBER_KEY, new_key()))
    assert r.json()["nickname"] is None
    assert r.json()["phone_masked"].endswith(new_phone[-4:])
    r = await api.members.patch(url, json={"referral_code": "X"}, headers=headers(MEMBER_KEY, new_key()))
    assert_problem(r, 400, "validation_error")
    r = await api.members.patch(url, json={"nickname": "C"}, headers=headers(MEMBER_KEY))
    assert_problem(r, 400, "idempotency_key_required")
    r = await api.members.patch(
        "/v1/members/00000000-0000-4000-8000-000000000000",
        json={"nickname": "C"},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 404, "member_not_found")


async def test_bind_identities(api: Api) -> None:
    a = await api.register()
    b = await api.register()
    identity = {"provider": "tmall", "external_id": unique("tb")}
    url = f"/v1/members/{a['member_id']}/identities"
    r = await api.members.post(url, json=identity, headers=headers(MEMBER_KEY, new_key()))
    assert r.status_code == 201
    assert [i["provider"] for i in r.json()["identities"]] == ["wechat_mini", "tmall"]
    r = await api.members.post(url, json=identity, headers=headers(MEMBER_KEY, new_key()))
    assert r.status_code == 200
    r = await api.members.post(
        f"/v1/members/{b['member_id']}/identities", json=identity, headers=headers(MEMBER_KEY, new_key())
    )
    assert_problem(r, 409, "identity_taken")
    r = await api.members.get("/v1/members/lookup", params=identity, headers=headers(MEMBER_KEY))
    assert r.json()["member_id"] == a["member_id"]
    r = await api.members.post(
        url, json={"provider": "myspace", "external_id": "x"}, headers=headers(MEMBER_KEY, new_key())
    )
    assert_problem(r, 400, "validation_error")


async def test_consents_keep_their_history(api: Api) -> None:
    member = await api.register()
    url = f"/v1/members/{member['member_id']}/consents"
    for granted in (True, False):
        r = await api.members.post(
            url,
            json={"purpose": "marketing", "policy_version": "2024-06", "granted": granted},
            headers=headers(MEMBER_KEY, new_key()),
        )
        assert r.status_code == 201
        assert r.json()["granted"] is granted
    r = await api.members.get(url, headers=headers(MEMBER_KEY))
    history = r.json()
    assert [c["purpose"] for c in history["items"]].count("marketing") == 2
    current = {c["purpose"]: c["granted"] for c in history["current"]}
    assert current == {"marketing": False, "membership": True}
    r = await api.members.post(
        url,
        json={"purpose": "selling_data", "policy_version": "1", "granted": True},
        headers=headers(MEMBER_KEY, new_key()),
    )
    assert_problem(r, 400, "validation_error")


async def test_tiers_are_defined_by_config(api: Api) -> None:
    r = await api.members.get("/v1/tiers", headers=headers(MEMBER_KEY))
    tiers = r.json()["items"]
    assert [(t["name"], t["threshold"], t["multiplier"]) for t in tiers] == [
        ("regular", 0, 1.0),
        ("silver", 1000, 1.2),
        ("gold", 5000, 1.5),
        ("diamond", 20000, 2.0),
    ]
    assert tiers[3]["benefits"]["early_access"] is True


async def test_members_scopes(api: Api) -> None:
    r = await api.members.post("/v1/members", json=registration(), headers=headers(EARN_KEY, new_key()))
    assert_problem(r, 403, "forbidden")
    r = await api.members.get("/v1/tiers")
    assert_problem(r, 401, "unauthorized")


async def test_a_member_is_known_to_the_points_service_as_soon_as_registered(api: Api) -> None:
    member = await api.register()
    account = await api.account(member["member_id"])
    assert account["available"] == 0
    assert (await api.purchase(member["member_id"], 300))["points"] == 3
