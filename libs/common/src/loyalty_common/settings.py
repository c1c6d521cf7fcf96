"""Settings from the environment: one object, read once per process, with safe defaults for development and
strict checks for production (LOYALTY_ENV=production refuses to start without real keys and secrets)."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from loyalty_common.rules import ProgrammeRules, load_rules

Scope = Literal["member", "earn", "admin"]
SCOPES: tuple[Scope, ...] = ("member", "earn", "admin")
Environment = Literal["development", "test", "production"]


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to set."""


class ApiKeySpec(msgspec.Struct, frozen=True):
    name: str
    key: str
    scopes: frozenset[str]


class PhoneKey(msgspec.Struct, frozen=True):
    key_id: str
    key: bytes


def parse_api_keys(raw: str) -> tuple[ApiKeySpec, ...]:
    """`name:key:scope[+scope]`, comma-separated (API.md)."""
    specs: list[ApiKeySpec] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 3 or not all(parts):
            raise ConfigError("LOYALTY_API_KEYS entries must look like name:key:scope[+scope]")
        name, key, scope_text = parts
        scopes = frozenset(scope_text.split("+"))
        unknown = scopes - set(SCOPES)
        if unknown:
            raise ConfigError(f"LOYALTY_API_KEYS: unknown scope(s) {sorted(unknown)} for key {name!r}")
        specs.append(ApiKeySpec(name=name, key=key, scopes=scopes))
    names = [s.name for s in specs]
    if len(names) != len(set(names)):
        raise ConfigError("LOYALTY_API_KEYS: key names must be unique")
    return tuple(specs)


def parse_phone_keys(raw: str) -> tuple[PhoneKey, ...]:
    """`key_id:base64(32 bytes)`, comma-separated; the first is used to encrypt, all are used to decrypt."""
    keys: list[PhoneKey] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, _, encoded = item.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise ConfigError(f"LOYALTY_PHONE_KEYS: key {key_id!r} is not base64") from exc
        if not key_id or len(key) != 32:
            raise ConfigError("LOYALTY_PHONE_KEYS entries must be key_id:base64 of 32 random bytes")
        keys.append(PhoneKey(key_id=key_id, key=key))
    return tuple(keys)


def _decode_secret(name: str, raw: str) -> bytes:
    try:
        value = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ConfigError(f"{name} must be base64") from exc
    if len(value) < 32:
        raise ConfigError(f"{name} must hold at least 32 random bytes")
    return value


class DevSecrets(msgspec.Struct):
    """Development-only secrets, made once per checkout and kept in the data folder."""

    api_keys: str
    phone_keys: str
    blind_index_key: str


def _random_b64(n: int = 32) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def load_dev_secrets(data_dir: Path) -> tuple[DevSecrets, bool]:
    """Read or create `<data_dir>/dev-secrets.json`. Returns the secrets and whether they were just made."""
    path = data_dir / "dev-secrets.json"
    if path.exists():
        return msgspec.json.decode(path.read_bytes(), type=DevSecrets), False
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe
    made = DevSecrets(
        api_keys=f"dev-mini:dev-{token(18)}:member,dev-orders:dev-{token(18)}:earn,dev-ops:dev-{token(18)}:admin",
        phone_keys=f"dev1:{_random_b64()}",
        blind_index_key=_random_b64(),
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(made)))
    tmp.chmod(0o600)
    tmp.replace(path)
    return made, True


class Settings(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    env: Environment = "development"
    database_url: str | None = None
    api_keys: tuple[ApiKeySpec, ...] = ()
    timezone_name: str = "Asia/Shanghai"
    phone_keys: tuple[PhoneKey, ...] = ()
    blind_index_key: bytes = b""
    data_dir: Path = Path(".data")
    rules_file: str | None = None
    log_level: str = "info"
    log_format: Literal["json", "console"] = "json"
    log_file: str | None = None
    db_pool_size: int = 10
    db_max_overflow: int = 10
    host: str = "127.0.0.1"
    points_port: int = 8001
    members_port: int = 8002
    workers: int = 1
    expire_chunk: int = 25
    expire_parallel: int = 2
    retention_days: int = 1095

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @cached_property
    def rules(self) -> ProgrammeRules:
        return load_rules(self.rules_file)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError("DATABASE_URL is not set")
        return self.database_url


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env_map = os.environ if environ is None else environ
    env = env_map.get("LOYALTY_ENV", "development")
    if env not in ("development", "test", "production"):
        raise ConfigError("LOYALTY_ENV must be development, test or production")
    data_dir = Path(env_map.get("LOYALTY_DATA_DIR", ".data")).resolve()

    api_keys_raw = env_map.get("LOYALTY_API_KEYS", "")
    phone_keys_raw = env_map.get("LOYALTY_PHONE_KEYS", "")
    blind_raw = env_map.get("LOYALTY_BLIND_INDEX_KEY", "")

    if env == "production":
        missing = [
            name
            for name, value in (
                ("DATABASE_URL", env_map.get("DATABASE_URL", "")),
                ("LOYALTY_API_KEYS", api_keys_raw),
                ("LOYALTY_PHONE_KEYS", phone_keys_raw),
                ("LOYALTY_BLIND_INDEX_KEY", blind_raw),
            )
            if not value.strip()
        ]
        if missing:
            raise ConfigError(f"LOYALTY_ENV=production needs real secrets; not set: {', '.join(missing)}")
    elif not (api_keys_raw and phone_keys_raw and blind_raw):
        dev, _ = load_dev_secrets(data_dir)
        api_keys_raw = api_keys_raw or dev.api_keys
        phone_keys_raw = phone_keys_raw or dev.phone_keys
        blind_raw = blind_raw or dev.blind_index_key

    api_keys = parse_api_keys(api_keys_raw)
    phone_keys = parse_phone_keys(phone_keys_raw)
    if not phone_keys:
        raise ConfigError("LOYALTY_PHONE_KEYS must name at least one key")
    if env == "production":
        weak = [k.name for k in api_keys if len(k.key) < 16 or k.key.startswith("dev-")]
        if weak:
            raise ConfigError(f"LOYALTY_ENV=production refuses weak or development API keys: {', '.join(weak)}")

    timezone_name = env_map.get("LOYALTY_TIMEZONE", "Asia/Shanghai")
    try:
        ZoneInfo(timezone_name)
    except Exception as exc:
        raise ConfigError(f"LOYALTY_TIMEZONE {timezone_name!r} is not a known timezone") from exc

    def _int(name: str, default: int) -> int:
        raw = env_map.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be an integer") from exc

    log_format = env_map.get("LOYALTY_LOG_FORMAT", "json")
    if log_format not in ("json", "console"):
        raise ConfigError("LOYALTY_LOG_FORMAT must be json or console")

    settings = Settings(
        env=env,  # type: ignore[arg-type]
        database_url=env_map.get("DATABASE_URL") or None,
        api_keys=api_keys,
        timezone_name=timezone_name,
        phone_keys=phone_keys,
        blind_index_key=_decode_secret("LOYALTY_BLIND_INDEX_KEY", blind_raw),
        data_dir=data_dir,
        rules_file=env_map.get("LOYALTY_RULES_FILE") or None,
        log_level=env_map.get("LOYALTY_LOG_LEVEL", "info").lower(),
        log_format=log_format,  # type: ignore[arg-type]
        log_file=env_map.get("LOYALTY_LOG_FILE") or None,
        db_pool_size=_int("LOYALTY_DB_POOL_SIZE", 10),
        db_max_overflow=_int("LOYALTY_DB_MAX_OVERFLOW", 10),
        host=env_map.get("LOYALTY_HOST", "127.0.0.1"),
        points_port=_int("LOYALTY_POINTS_PORT", 8001),
        members_port=_int("LOYALTY_MEMBERS_PORT", 8002),
        workers=_int("LOYALTY_WORKERS", 1),
        expire_chunk=max(1, _int("LOYALTY_EXPIRE_CHUNK", 25)),
        expire_parallel=max(1, _int("LOYALTY_EXPIRE_PARALLEL", 2)),
        retention_days=max(1, _int("LOYALTY_RETENTION_DAYS", 1095)),
    )
    settings.rules  # noqa: B018 -- load the rules file now, so a bad file stops start-up
    return settings
