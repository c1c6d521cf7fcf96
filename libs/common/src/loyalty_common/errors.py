"""Domain errors with their HTTP status and stable `code` (API.md), rendered once as RFC 9457 problem+json."""

from __future__ import annotations

import re
import traceback
from typing import Any, ClassVar

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    """The problem+json body. Error-specific members (`available`, `current_status`, ...) ride in `extra`."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None


class LoyaltyError(Exception):
    """Base of every error the services answer with. Subclasses fix the status, code and title."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        self.headers = headers or {}
        super().__init__(self.detail)

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:loyalty:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        body.update(self.extra)
        return body


# --- 400 -------------------------------------------------------------------------------------------------
class ValidationFailed(LoyaltyError):
    status, code, title = 400, "validation_error", "The request is not valid"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


class IdempotencyKeyRequired(LoyaltyError):
    status, code, title = 400, "idempotency_key_required", "An Idempotency-Key header is required"


# --- 401 / 403 -------------------------------------------------------------------------------------------
class Unauthorized(LoyaltyError):
    status, code, title = 401, "unauthorized", "A valid API key is required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="loyalty"'})


class Forbidden(LoyaltyError):
    status, code, title = 403, "forbidden", "The API key lacks the scope this call needs"


class TierRequired(LoyaltyError):
    status, code, title = 403, "tier_required", "The member's tier is too low for this"


# --- 404 -------------------------------------------------------------------------------------------------
class RouteNotFound(LoyaltyError):
    status, code, title = 404, "not_found", "No such resource"


class MemberNotFound(LoyaltyError):
    status, code, title = 404, "member_not_found", "No such member"


class OrderNotFound(LoyaltyError):
    status, code, title = 404, "order_not_found", "No such order for this member"


class RewardNotFound(LoyaltyError):
    status, code, title = 404, "reward_not_found", "No such reward"


class ResourceNotFound(LoyaltyError):
    status, code, title = 404, "not_found", "No such resource"


class MethodNotAllowed(LoyaltyError):
    status, code, title = 405, "method_not_allowed", "Method not allowed on this resource"


class NotAcceptable(LoyaltyError):
    status, code, title = 406, "not_acceptable", "No acceptable representation"


# --- 409 -------------------------------------------------------------------------------------------------
class IdentityTaken(LoyaltyError):
    status, code, title = 409, "identity_taken", "The identity is bound to another member"


class PhoneTaken(LoyaltyError):
    status, code, title = 409, "phone_taken", "The phone number belongs to another member"


class OrderAlreadyEarned(LoyaltyError):
    status, code, title = 409, "order_already_earned", "Points were already earned for this order"


class OutOfStock(LoyaltyError):
    status, code, title = 409, "out_of_stock", "Not enough stock left"


class InvalidState(LoyaltyError):
    status, code, title = 409, "invalid_state", "The resource is not in a state that allows this"

    def __init__(self, current_status: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, current_status=current_status, **extra)


class HoldExpired(LoyaltyError):
    status, code, title = 409, "hold_expired", "The hold has expired and its points were released"


class Conflict(LoyaltyError):
    status, code, title = 409, "conflict", "The request conflicts with the current state"


class PayloadTooLarge(LoyaltyError):
    status, code, title = 413, "payload_too_large", "The request body is too large"


class UnsupportedMediaType(LoyaltyError):
    status, code, title = 415, "unsupported_media_type", "The request body must be application/json"


# --- 422 -------------------------------------------------------------------------------------------------
class IdempotencyKeyReused(LoyaltyError):
    status, code, title = 422, "idempotency_key_reused", "The Idempotency-Key was used with another request"


class InvalidBusinessTime(LoyaltyError):
    status, code, title = 422, "invalid_business_time", "The business time is in the future or too old"


class ConsentRequired(LoyaltyError):
    status, code, title = 422, "consent_required", "A membership consent is required"


class InvalidPhone(LoyaltyError):
    status, code, title = 422, "invalid_phone", "The phone number is not valid"


class InvalidReferralCode(LoyaltyError):
    status, code, title = 422, "invalid_referral_code", "The referral code is not valid"


class RefundExceedsOrder(LoyaltyError):
    status, code, title = 422, "refund_exceeds_order", "The refunds would exceed the order amount"


class UnknownActivityKind(LoyaltyError):
    status, code, title = 422, "unknown_activity_kind", "No such activity kind"


class InsufficientPoints(LoyaltyError):
    status, code, title = 422, "insufficient_points", "Not enough points"

    def __init__(self, available: int, required: int, detail: str | None = None) -> None:
        super().__init__(
            detail or f"{required} points are needed and {available} are available",
            available=available,
            required=required,
        )


class RedemptionLimitReached(LoyaltyError):
    status, code, title = 422, "redemption_limit_reached", "The member has reached the limit for this reward"


class RewardInactive(LoyaltyError):
    status, code, title = 422, "reward_inactive", "The reward is not available now"


class InvalidPointsStep(LoyaltyError):
    status, code, title = 422, "invalid_points_step", "Points must be a multiple of the step"


class ExceedsOffsetCap(LoyaltyError):
    status, code, title = (
        422,
        "exceeds_offset_cap",
        "The offset exceeds the share of the order points may pay",
    )


# --- 5xx -------------------------------------------------------------------------------------------------
class ServiceUnavailable(LoyaltyError):
    status, code, title = 503, "service_unavailable", "The service cannot serve this now; retry later"


# --- rendering -------------------------------------------------------------------------------------------
_BACKTICKED = re.compile(r"`([^`]+)`")


def _field_errors(exc: HTTPException) -> list[FieldError]:
    """Turn Litestar's validation extras into `[{field, message}]` naming the offending field."""
    errors: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        key = str(item.get("key") or "body")
        message = str(item.get("message") or "is not valid")
        if key == "data":
            named = _BACKTICKED.search(message)
            if "missing required field" in message or "unknown field" in message:
                key = named.group(1) if named else "body"
            elif message == "'data'":
                key, message = "body", "a JSON body is required"
            else:
                key = "body"
        errors.append(FieldError(field=key.replace("[...]", ""), message=message))
    if not errors:
        detail = str(exc.detail)
        if "JSON is malformed" in detail or "malformed" in detail.lower():
            errors.append(FieldError(field="body", message=detail))
        else:
            errors.append(FieldError(field="body", message=detail or "the request is not valid"))
    return errors


_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def msgspec_field_error(exc: Exception) -> FieldError:
    """`Expected int, got str - at $.identity.provider` -> field `identity.provider`."""
    match = _AT.match(str(exc))
    message = match.group("message") if match else str(exc)
    path = (match.group("path") or "") if match else ""
    path = path.lstrip(".")
    named = _BACKTICKED.search(message)
    if named and ("missing required field" in message or "unknown field" in message):
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return FieldError(field=path or "body", message=message)


def to_loyalty_error(exc: Exception) -> LoyaltyError:
    if isinstance(exc, LoyaltyError):
        return exc
    if isinstance(exc, NotAuthorizedException):
        return Unauthorized(exc.detail if exc.detail != "Unauthorized" else None)
    if isinstance(exc, PermissionDeniedException):
        return Forbidden()
    if isinstance(exc, HTTPException):
        status = exc.status_code
        if status == 400:
            return ValidationFailed(_field_errors(exc))
        mapping: dict[int, type[LoyaltyError]] = {
            404: RouteNotFound,
            405: MethodNotAllowed,
            406: NotAcceptable,
            413: PayloadTooLarge,
            415: UnsupportedMediaType,
            503: ServiceUnavailable,
        }
        cls = mapping.get(status)
        if cls is not None:
            return cls()
        error = LoyaltyError(str(exc.detail))
        error.status = status  # type: ignore[misc]
        return error
    return LoyaltyError()


def problem_response(error: LoyaltyError) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(error.problem()),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


def describe_failure(exc: BaseException) -> dict[str, Any]:
    """What may be logged about an unexpected error: its type, where it happened and, for database errors, the
    SQLSTATE and constraint. Never its message: driver messages quote the query's parameters, which can hold
    personal data."""
    frames = traceback.extract_tb(exc.__traceback__)[-8:]
    info: dict[str, Any] = {
        "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "where": [f"{f.filename.rsplit('/site-packages/', 1)[-1]}:{f.lineno} {f.name}" for f in frames],
    }
    cause = getattr(exc, "orig", None) or exc.__cause__
    while cause is not None:
        sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if sqlstate:
            info["sqlstate"] = sqlstate
            info["constraint"] = getattr(cause, "constraint_name", None)
            break
        cause = getattr(cause, "__cause__", None)
    return info


def exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    error = to_loyalty_error(exc)
    if error.status >= 500:
        log.error(
            "unhandled_error",
            route=request.scope.get("path_template") or "unmatched",
            request_id=request.scope.get("state", {}).get("request_id"),
            **describe_failure(exc),
        )
    return problem_response(error)
