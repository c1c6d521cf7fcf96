"""Settings: safe to try (development secrets made on first use), strict in production."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from loyalty_common.settings import ConfigError, parse_api_keys, settings_from_env


def b64(n: int = 32) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def test_api_keys_parse_names_keys_and_scopes() -> None:
    keys = parse_api_keys("mini:k1:member,orders:k2:earn,ops:k3:admin,both:k4:member+earn")
    assert [(k.name, k.key, sorted(k.scopes)) for k in keys] == [
        ("mini", "k1", ["member"]),
        ("orders", "k2", ["earn"]),
        ("ops", "k3", ["admin"]),
        ("both", "k4", ["earn", "member"]),
    ]


@pytest.mark.parametrize("raw", ["mini:k1", "mini:k1:owner", "a:k:member,a:j:earn", "::member"])
def test_bad_api_keys_are_refused(raw: str) -> None:
    with pytest.raises(ConfigError):
        parse_api_keys(raw)


def test_development_makes_and_keeps_its_own_secrets(tmp_path: Path) -> None:
    env = {"LOYALTY_DATA_DIR": str(tmp_path)}
    first = settings_from_env(env)
    second = settings_from_env(env)
    assert first.api_keys == second.api_keys and len(first.api_keys) == 3
    assert first.blind_index_key == second.blind_index_key
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_real_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LOYALTY_API_KEYS"):
        settings_from_env({"LOYALTY_ENV": "production", "LOYALTY_DATA_DIR": str(tmp_path)})
    assert not (tmp_path / "dev-secrets.json").exists()


def test_production_refuses_weak_keys(tmp_path: Path) -> None:
    env = {
        "LOYALTY_ENV": "production",
        "DATABASE_URL": "postgresql://db/loyalty",
        "LOYALTY_API_KEYS": "mini:k1:member",
        "LOYALTY_PHONE_KEYS": f"p1:{b64()}",
        "LOYALTY_BLIND_INDEX_KEY": b64(),
    }
    with pytest.raises(ConfigError, match="weak"):
        settings_from_env(env)
    env["LOYALTY_API_KEYS"] = "mini:" + secrets.token_urlsafe(24) + ":member"
    assert settings_from_env(env).is_production


def test_phone_keys_must_be_32_bytes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="32"):
        settings_from_env({"LOYALTY_DATA_DIR": str(tmp_path), "LOYALTY_PHONE_KEYS": f"p1:{b64(16)}"})


def test_unknown_timezone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="timezone"):
        settings_from_env({"LOYALTY_DATA_DIR": str(tmp_path), "LOYALTY_TIMEZONE": "Mars/Olympus"})


def test_rules_file_overrides_defaults(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[offset]\nmax_percent_of_order = 30\n[expiry]\nvalidity_days = 730\n")
    s = settings_from_env({"LOYALTY_DATA_DIR": str(tmp_path), "LOYALTY_RULES_FILE": str(rules)})
    assert s.rules.offset.max_percent_of_order == 30
    assert s.rules.expiry.validity_days == 730
    assert s.rules.tiers.ladder[1].name == "silver"
