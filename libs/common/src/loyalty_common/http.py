"""What both services' HTTP apps share: problem+json errors, API-key auth, the request's transaction, health
probes, request logs and the OpenAPI document at /schema/openapi.json."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import structlog
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncEngine

from loyalty_common import metrics, migrations
from loyalty_common.auth import PUBLIC_PATHS, ApiKeyMiddleware, KeyRing
from loyalty_common.clock import Clock
from loyalty_common.db import create_engine, ping, provide_transaction
from loyalty_common.errors import (
    PROBLEM_JSON,
    FieldError,
    LoyaltyError,
    Problem,
    ValidationFailed,
    exception_handler,
    msgspec_field_error,
    to_loyalty_error,
)
from loyalty_common.logs import bind_service
from loyalty_common.settings import Settings
from loyalty_common.tables import CommonTables

log = structlog.get_logger("loyalty.http")

MAX_BODY_BYTES = 256 * 1024


class Worker(Protocol):
    """A background task of a service process (event consumers, webhook sender): runs until `stop` is set."""

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass
class ServiceSpec:
    """What makes one service's app: its name, routes, tables and the things its handlers need."""

    name: str
    version: str
    description: str
    route_handlers: Sequence[ControllerRouterHandler]
    common_tables: CommonTables
    dependencies: dict[str, Provide] = field(default_factory=dict)
    readiness: Callable[[State], Awaitable[list[str]]] | None = None
    consumers: Callable[[AsyncEngine], list[Worker]] | None = None
    on_startup: list[Callable[[Litestar], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[Litestar], Awaitable[None]]] = field(default_factory=list)


def request_log_middleware_for(service: str) -> Callable[[ASGIApp], ASGIApp]:
    def factory(app: ASGIApp) -> ASGIApp:
        return request_log_middleware(app, service)

    return factory


def request_log_middleware(app: ASGIApp, service: str = "loyalty") -> ASGIApp:
    """One log line per request: id, method, route template, status, duration, key name. Never the URL's query
    string (it can carry a phone number) nor any body or header."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.bind_contextvars(service=service, request_id=request_id)
        try:
            await app(scope, receive, send_wrapper)
        except Exception as exc:
            status = to_loyalty_error(exc).status
            raise
        finally:
            path = scope.get("path", "")
            route = scope.get("path_template") or "unmatched"
            elapsed = time.perf_counter() - started
            metrics.HTTP_REQUESTS.labels(service, route, scope.get("method", ""), str(status)).inc()
            metrics.HTTP_LATENCY.labels(service, route, scope.get("method", "")).observe(elapsed)
            if path not in ("/healthz", "/readyz", "/metrics"):
                log.info(
                    "request",
                    request_id=request_id,
                    method=scope.get("method"),
                    route=scope.get("path_template") or "unmatched",
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    key=state.get("principal_name"),
                )

    return middleware


def _body_type(handler: Any) -> Any:
    # Not cached by id(handler): tests build many apps, and a collected handler's id is reused by a new one.
    field = handler.parsed_fn_signature.parameters.get("data")
    return field.annotation if field is not None else None


async def validate_body_strictly(request: Request[Any, Any, Any]) -> None:
    """JSON bodies are decoded strictly: a wrong type is an error, never coerced ("100" is not 100).

    Runs before the handler's own (lenient) parsing, so every body error is a 400 validation_error that names
    the field by its path.
    """
    body_type = _body_type(request.route_handler)
    if body_type is None:
        return
    body = await request.body()
    if not body.strip():
        if type(None) in getattr(body_type, "__args__", ()):
            return
        raise ValidationFailed([FieldError("body", "a JSON body is required")])
    try:
        msgspec.json.decode(body, type=body_type, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationFailed([msgspec_field_error(exc)]) from None
    except msgspec.DecodeError as exc:
        raise ValidationFailed([FieldError("body", str(exc))]) from None


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if 0 < len(candidate) <= 64 and candidate.isascii() and candidate.isprintable():
                return candidate
    return uuid.uuid4().hex


def create_service_app(
    spec: ServiceSpec,
    settings: Settings,
    clock: Clock,
    engine: AsyncEngine | None = None,
    *,
    run_consumers: bool = True,
) -> Litestar:
    owns_engine = engine is None

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.engine = engine or create_engine(settings, application_name=f"loyalty-{spec.name}")
        app.state.keyring = KeyRing(settings.api_keys, app.state.engine, spec.common_tables, clock)
        stop = asyncio.Event()
        consumers = spec.consumers(app.state.engine) if spec.consumers and run_consumers else []
        app.state.consumers = consumers
        bind_service(spec.name)
        app.state.consumer_tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
        for hook in spec.on_startup:
            await hook(app)
        try:
            yield
        finally:
            stop.set()
            if app.state.consumer_tasks:
                await asyncio.wait(app.state.consumer_tasks, timeout=10)
            for hook in spec.on_shutdown:
                await hook(app)
            if owns_engine:
                await app.state.engine.dispose()

    @get("/healthz", include_in_schema=True, tags=["operations"], sync_to_thread=False)
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @get("/metrics", include_in_schema=False)
    async def metrics_endpoint(state: State) -> Response[bytes]:
        """Prometheus exposition (no key: keep it on the internal network)."""
        await metrics.refresh(spec.name, state)
        body, content_type = metrics.exposition()
        return Response(content=body, media_type=content_type)

    @get("/readyz", include_in_schema=True, tags=["operations"])
    async def readyz(state: State) -> Response[dict[str, Any]]:
        """Ready to serve: the database answers and the service's own checks pass."""
        found: list[str] = []
        if not await ping(state.engine):
            found.append("database unreachable")
        else:
            async with state.engine.connect() as conn:
                if not await migrations.at_head(conn, spec.name):
                    found.append("migrations are not at head")
            if spec.readiness is not None:
                found.extend(await spec.readiness(state))
        for task in state.consumer_tasks:
            if task.done():
                found.append("an event consumer has stopped")
        status = 503 if found else 200
        return Response({"status": "ok" if not found else "unavailable", "problems": found}, status_code=status)

    auth = DefineMiddleware(ApiKeyMiddleware, exclude=[f"^{p}" for p in PUBLIC_PATHS])
    return Litestar(
        route_handlers=[healthz, readyz, metrics_endpoint, *spec.route_handlers],
        lifespan=[lifespan],
        dependencies={"tx": Provide(provide_transaction), **spec.dependencies},
        middleware=[request_log_middleware_for(spec.name), auth],
        exception_handlers={LoyaltyError: exception_handler, Exception: exception_handler},
        openapi_config=OpenAPIConfig(
            title=f"Loyalty {spec.name} service",
            version=spec.version,
            description=spec.description,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
            components=Components(
                security_schemes={
                    "BearerKey": SecurityScheme(type="http", scheme="bearer", description="API key"),
                }
            ),
            security=[{"BearerKey": []}],
        ),
        before_request=validate_body_strictly,
        request_max_body_size=MAX_BODY_BYTES,
        state=State({"settings": settings, "clock": clock, "consumer_tasks": []}),
        debug=False,
    )


def constant(value: Any) -> Provide:
    """A dependency that is always the same object (a service's context)."""

    def provide() -> Any:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem+json answers a route can give (401/403/400 come with every route)."""
    described = {
        400: "Invalid request (validation_error, idempotency_key_required)",
        401: "unauthorized",
        403: "forbidden",
        404: "Not found",
        409: "Conflict",
        422: "Not allowed by the rules",
    }
    return {
        status: ResponseSpec(
            data_container=Problem, description=described.get(status, "Problem"), media_type=PROBLEM_JSON
        )
        for status in sorted({400, 401, 403, *statuses})
    }
