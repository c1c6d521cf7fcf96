"""The Idempotency-Key behaviour of API.md, used by every mutating route through `Idempotency.run`.

The first answer of a call is stored in the same transaction as its effects; a replay with the same key and the
same request gets that answer back with `Idempotent-Replayed: true`; the same key with another request is 422.
Calls that fail store nothing, so a corrected retry with the same key goes through.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy import bindparam, func, select

from loyalty_common.clock import Clock
from loyalty_common.db import Tx
from loyalty_common.errors import PROBLEM_JSON, IdempotencyKeyRequired, IdempotencyKeyReused
from loyalty_common.metrics import IDEMPOTENT_REPLAYS
from loyalty_common.tables import CommonTables
from loyalty_common.writes import WriteSet

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,128}")

T = TypeVar("T")


def idempotency_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The request's Idempotency-Key: 1-128 visible ASCII characters, or idempotency_key_required."""
    key = connection.headers.get(HEADER)
    if key is None or not _VALID_KEY.fullmatch(key):
        raise IdempotencyKeyRequired("Send an Idempotency-Key header of 1-128 visible ASCII characters")
    return key


async def require_idempotency_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard for mutating routes: the key is checked before the body is read. A coroutine, so Litestar calls it
    in the event loop instead of a worker thread."""
    idempotency_key(connection)


@dataclass(frozen=True)
class MemberScope:
    member_id: UUID


@dataclass(frozen=True)
class CallerScope:
    caller: str


KeyScope = MemberScope | CallerScope


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What a mutating operation answers: its status and body (a msgspec Struct)."""

    status_code: int
    body: T


def fingerprint(request: Request[Any, Any, Any], data: object | None) -> bytes:
    """Identifies "the same request": method, path and the decoded body re-encoded canonically."""
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b" ")
    digest.update(request.url.path.encode())
    digest.update(b"\n")
    if data is not None:
        digest.update(msgspec.json.encode(data))
    return digest.digest()


class Idempotency:
    def __init__(self, tables: CommonTables, clock: Clock) -> None:
        self._tables = tables
        self._clock = clock
        # Built once: the hot path then skips constructing each statement and computing its cache key.
        self._lock = select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("lock_text"), 0)))
        member_keys, caller_keys = tables.idempotency_keys, tables.caller_idempotency_keys
        self._read_member = select(member_keys.c.fingerprint, member_keys.c.status_code, member_keys.c.body).where(
            member_keys.c.member_id == bindparam("owner"), member_keys.c.key == bindparam("key")
        )
        self._read_caller = select(caller_keys.c.fingerprint, caller_keys.c.status_code, caller_keys.c.body).where(
            caller_keys.c.caller == bindparam("owner"), caller_keys.c.key == bindparam("key")
        )

    async def run(
        self,
        request: Request[Any, Any, Any],
        tx: Tx,
        scope: KeyScope,
        data: object | None,
        operation: Callable[[WriteSet], Awaitable[Answer[Any]]],
    ) -> Response[Any]:
        """Replay the stored first answer for this key, or run `operation` and store its answer.

        The operation stages its rows into the WriteSet it is given; they are written together with the
        idempotency record, in one statement, after it returns.
        """
        key = idempotency_key(request)
        print_ = fingerprint(request, data)
        stored = await self._claim(tx, scope, key)
        if stored is not None:
            stored_fingerprint, status_code, body = stored
            if stored_fingerprint != print_:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was first used with another request; use a new key for a new request"
                )
            IDEMPOTENT_REPLAYS.labels(scope_service(self._tables)).inc()
            return _response(status_code, body, replayed=True)
        writes = WriteSet()
        answer = await operation(writes)
        body = msgspec.json.encode(answer.body)
        self.stage(writes, scope, key, print_, answer.status_code, body)
        await writes.flush(tx)
        return _response(answer.status_code, body, replayed=False)

    async def _claim(self, tx: Tx, scope: KeyScope, key: str) -> tuple[bytes, int, bytes] | None:
        """Serialize calls with this key (advisory lock until commit), then read a stored first answer."""
        owner: UUID | str
        if isinstance(scope, MemberScope):
            lock_text, read, owner = f"m:{scope.member_id}:{key}", self._read_member, scope.member_id
        else:
            lock_text, read, owner = f"c:{scope.caller}:{key}", self._read_caller, scope.caller
        await tx.execute(self._lock, {"lock_text": lock_text})
        row = (await tx.execute(read, {"owner": owner, "key": key})).first()
        if row is None:
            return None
        return bytes(row.fingerprint), int(row.status_code), bytes(row.body)

    def stage(self, writes: WriteSet, scope: KeyScope, key: str, print_: bytes, status_code: int, body: bytes) -> None:
        row = {
            "key": key,
            "fingerprint": print_,
            "status_code": status_code,
            "body": body,
            "created_at": self._clock.now(),
        }
        if isinstance(scope, MemberScope):
            writes.insert(self._tables.idempotency_keys, {"member_id": scope.member_id, **row})
        else:
            writes.insert(self._tables.caller_idempotency_keys, {"caller": scope.caller, **row})


def _response(status_code: int, body: bytes, *, replayed: bool) -> Response[bytes]:
    headers = {REPLAYED_HEADER: "true"} if replayed else {}
    media_type = PROBLEM_JSON if status_code >= 400 else "application/json"
    return Response(content=body, status_code=status_code, media_type=media_type, headers=headers)


def scope_service(tables: CommonTables) -> str:
    return str(tables.idempotency_keys.schema)
