"""The one place that maps errors to HTTP: RFC 9457 problem details (``application/problem+json``).

Every error leaves as a problem document with ``type``, ``title``, ``status``, ``detail`` and ``code``; source
locations (``location``: line/column) and JSON pointers (``pointer``) are added when known. Unexpected exceptions
become a 500 problem that carries the request id and never a traceback.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap

from sigforge.errors import (
    BundleRejected,
    Conflict,
    DomainError,
    Forbidden,
    IntegrityError,
    InvalidAlgorithm,
    InvalidInput,
    InvalidSettings,
    NotFound,
    PasswordChangeRequired,
    SchemaMismatch,
    ServiceUnavailable,
    ToolchainError,
    ToolchainIntegrityError,
    Unauthenticated,
    UnsupportedTarget,
)
from sigforge.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://sigforge.invalid/problems/"  # an identifier, never fetched: .invalid cannot resolve

# Most specific first: the first matching class wins.
STATUS_FOR: tuple[tuple[type[DomainError], int, str], ...] = (
    (Unauthenticated, HTTP_401_UNAUTHORIZED, "Not signed in"),
    (PasswordChangeRequired, HTTP_403_FORBIDDEN, "Password change required"),
    (Forbidden, HTTP_403_FORBIDDEN, "Forbidden"),
    (NotFound, HTTP_404_NOT_FOUND, "Not found"),
    (Conflict, HTTP_409_CONFLICT, "Conflict"),
    (InvalidAlgorithm, HTTP_422_UNPROCESSABLE_ENTITY, "Invalid algorithm"),
    (UnsupportedTarget, HTTP_422_UNPROCESSABLE_ENTITY, "Unsupported target"),
    (InvalidInput, HTTP_422_UNPROCESSABLE_ENTITY, "Invalid input"),
    (BundleRejected, HTTP_422_UNPROCESSABLE_ENTITY, "Bundle rejected"),
    (SchemaMismatch, HTTP_503_SERVICE_UNAVAILABLE, "Database schema mismatch"),
    (ServiceUnavailable, HTTP_503_SERVICE_UNAVAILABLE, "Service unavailable"),
    (ToolchainError, HTTP_503_SERVICE_UNAVAILABLE, "Toolchain unavailable"),
    (ToolchainIntegrityError, HTTP_503_SERVICE_UNAVAILABLE, "Toolchain failed its integrity check"),
    (IntegrityError, HTTP_500_INTERNAL_SERVER_ERROR, "Integrity error"),
    (InvalidSettings, HTTP_500_INTERNAL_SERVER_ERROR, "Invalid settings"),
)


def _request_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def problem(
    request: Request[Any, Any, Any],
    *,
    status: int,
    title: str,
    detail: str,
    code: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body["instance"] = request.url.path
    request_id = _request_id(request)
    if request_id:
        body["request_id"] = request_id
    body.update(extra or {})
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, DomainError)
    status, title = HTTP_500_INTERNAL_SERVER_ERROR, "Error"
    for cls, mapped_status, mapped_title in STATUS_FOR:
        if isinstance(exc, cls):
            status, title = mapped_status, mapped_title
            break
    extra: dict[str, Any] = {}
    if exc.location is not None:
        extra["location"] = exc.location.as_dict()
    if exc.pointer is not None:
        extra["pointer"] = exc.pointer
    if exc.detail and status < HTTP_500_INTERNAL_SERVER_ERROR:
        extra["evidence"] = exc.detail
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        log.error("request.domain_error", error=str(exc), code=exc.code)
    # RFC 9110: a 401 names the scheme that would be accepted.
    headers = {"www-authenticate": 'Bearer realm="sigforge"'} if status == HTTP_401_UNAUTHORIZED else None
    # The location travels as structured fields; the detail stays the plain sentence.
    return problem(request, status=status, title=title, detail=exc.message, code=exc.code, extra=extra, headers=headers)


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_AT_PATH = re.compile(r" - at `\$([^`]*)`$")


def _pointer(key: Any, message: str) -> str:
    """A JSON pointer for one of Litestar's validation items (``data`` is how it names the whole body)."""
    missing = _MISSING_FIELD.search(message)
    if missing:
        return f"/{missing.group(1)}"
    at = _AT_PATH.search(message)
    if at:
        return "/" + at.group(1).lstrip(".").replace(".", "/").replace("[", "/").replace("]", "")
    return "/" if key in (None, "", "data") else f"/{key}"


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            if message == "'data'":  # Litestar's way of saying the body was empty
                message = "a JSON object body is required"
            errors.append({"detail": _AT_PATH.sub("", message), "pointer": _pointer(item.get("key"), message)})
    return errors


def http_exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, ValidationException) or status == HTTP_400_BAD_REQUEST:
        errors = _validation_errors(exc) if isinstance(exc, ValidationException) else []
        if errors:
            detail = "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors)
        else:  # Litestar reports an undecodable body as a bare 400 carrying the decoder's message
            detail = f"the request body is not valid JSON: {exc.detail}"
        return problem(
            request,
            status=HTTP_400_BAD_REQUEST,
            title="Malformed request",
            detail=detail,
            code="malformed-request",
            extra={"errors": errors} if errors else None,
        )
    code = {404: "not-found", 405: "method-not-allowed", 413: "too-large"}.get(status, f"http-{status}")
    title = {404: "Not found", 405: "Method not allowed", 413: "Request body too large"}.get(status, "HTTP error")
    return problem(request, status=status, title=title, detail=exc.detail, code=code, headers=exc.headers)


def unexpected_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, RecursionError) and "deserializing" in str(exc):
        # msgspec gives up on absurdly nested JSON: the client's fault, not ours.
        return problem(
            request,
            status=HTTP_400_BAD_REQUEST,
            title="Malformed request",
            detail="the request body is not valid JSON for this API: it is nested too deeply",
            code="malformed-request",
        )
    log.exception("request.unhandled_error", error_type=type(exc).__name__)
    return problem(
        request,
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        title="Internal error",
        detail="the appliance hit an unexpected error; the request id identifies it in the logs",
        code="internal",
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error_handler,
    HTTPException: http_exception_handler,
    Exception: unexpected_error_handler,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem"]
