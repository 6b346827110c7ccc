"""Who is calling: the sign-in token from ``Authorization: Bearer <token>`` or the console's session cookie.

Guards (Litestar runs them before the handler, so an import's body is not read for a caller who may not import):
``signed_in`` lets any signed-in user through, even one who must still replace a one-time password (the session
endpoints need that); ``admin_only`` also requires the admin role and a chosen password. Both leave the resolved
``Principal`` in the request's scope state, where ``web.context.api_actor`` finds it for the audit log.
A missing or bad token is 401, a signed-in user without the right is 403 (``web.errors`` maps the domain errors).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from sigforge.errors import Unauthenticated
from sigforge.services.users import Principal, require_admin
from sigforge.web.context import PRINCIPAL_KEY, AppContext

COOKIE = "sigforge_session"
MAX_TOKEN_CHARS = 256


def presented_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token the request carries: the Authorization header first, else the session cookie.

    Raises:
        Unauthenticated: an Authorization header that is not ``Bearer <token>``.
    """
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("the Authorization header must be `Bearer <token>`")
        return value.strip()
    return connection.cookies.get(COOKIE) or None


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Resolve the caller's token (off the event loop) and remember the principal for this request."""
    token = presented_token(connection)
    if token is None:
        raise Unauthenticated("not signed in: send `Authorization: Bearer <token>` (POST /api/v1/session gives one)")
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated("not signed in: the token is unknown, expired or revoked")
    ctx = connection.app.state["ctx"]
    assert isinstance(ctx, AppContext)
    principal = await anyio.to_thread.run_sync(ctx.users().resolve, token)
    connection.scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
    return principal


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    await authenticate(connection)


async def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    require_admin(await authenticate(connection))
