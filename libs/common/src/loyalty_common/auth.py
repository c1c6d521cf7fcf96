"""API-key authentication with scopes (API.md: `member`, `earn`, `admin`; admin implies the other two).

Keys come from LOYALTY_API_KEYS and from keys made with the admin CLI, which are stored as SHA-256 only.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common.clock import Clock
from loyalty_common.errors import Forbidden, Unauthorized
from loyalty_common.settings import ApiKeySpec, Scope
from loyalty_common.tables import CommonTables

PUBLIC_PATHS = ("/healthz", "/readyz", "/schema", "/metrics")


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the key's name (used in audit records and logs) and its scopes."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: Scope) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def new_key() -> str:
    """A fresh API key: 32 random bytes, URL-safe."""
    return "lk_" + secrets.token_urlsafe(32)


class KeyRing:
    """Resolves a presented key to a principal: env keys first, then stored keys (cached for `ttl` seconds)."""

    def __init__(
        self,
        specs: tuple[ApiKeySpec, ...],
        engine: AsyncEngine | None,
        tables: CommonTables | None,
        clock: Clock,
        ttl: float = 30.0,
        max_cached: int = 10_000,
    ) -> None:
        self._env = {hash_key(s.key): Principal(s.name, s.scopes) for s in specs}
        self._engine = engine
        self._tables = tables
        self._clock = clock
        self._ttl = ttl
        self._max_cached = max_cached
        self._cache: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()

    async def authenticate(self, key: str) -> Principal | None:
        digest = hash_key(key)
        principal = self._env.get(digest)
        if principal is not None:
            return principal
        if self._engine is None or self._tables is None:
            return None
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await self._lookup(digest)
        self._cache[digest] = (now + (self._ttl if principal else 2.0), principal)
        self._cache.move_to_end(digest)
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return principal

    async def _lookup(self, digest: bytes) -> Principal | None:
        assert self._engine is not None
        assert self._tables is not None
        keys = self._tables.api_keys
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(keys.c.name, keys.c.scopes).where(keys.c.key_hash == digest, keys.c.revoked_at.is_(None))
                )
            ).first()
        if row is None:
            return None
        return Principal(name=row.name, scopes=frozenset(row.scopes))


def bearer_key(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        key = bearer_key(connection.headers.get("authorization"))
        if key is None:
            raise Unauthorized("Send `Authorization: Bearer <key>`")
        keyring: KeyRing = connection.app.state.keyring
        principal = await keyring.authenticate(key)
        if principal is None:
            raise Unauthorized("The API key is not valid")
        connection.scope["state"]["principal_name"] = principal.name
        return AuthenticationResult(user=principal, auth=None)


def requires(
    scope: Scope,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Coroutine[Any, Any, None]]:
    """A guard: the caller's key must carry `scope` (or admin).

    Guards are coroutines although they do no I/O: Litestar runs a plain-function guard in a worker thread,
    which cost every request two thread hand-offs (measured with `make bench`).
    """

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.user
        if not isinstance(principal, Principal) or not principal.allows(scope):
            raise Forbidden(f"This call needs the `{scope}` scope")

    guard.__name__ = f"requires_{scope}"
    return guard


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = connection.user
    assert isinstance(principal, Principal)
    return principal


async def store_key(conn: Any, tables: CommonTables, *, name: str, key: str, scopes: list[str], clock: Clock) -> None:
    """Store a CLI-made key (hashed) in one service's schema."""
    from sqlalchemy.dialects.postgresql import insert

    keys = tables.api_keys
    stmt = insert(keys).values(
        name=name, key_hash=hash_key(key), scopes=sorted(scopes), created_at=clock.now(), revoked_at=None
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[keys.c.name],
        set_={"key_hash": stmt.excluded.key_hash, "scopes": stmt.excluded.scopes, "revoked_at": None},
    )
    await conn.execute(stmt)
