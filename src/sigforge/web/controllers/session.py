"""/api/v1/session: sign in (a token, also set as an HttpOnly cookie for the console), who am I, sign out, and
change one's own password.

A token from a one-time password is good only for these endpoints until the password is changed. The cookie is
``HttpOnly`` and ``SameSite=Strict`` (another site's page cannot make the browser send it), and ``Secure`` when the
request came over HTTPS.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from sigforge.services.users import TOKEN_LIFETIME, Principal
from sigforge.web.auth import COOKIE, signed_in
from sigforge.web.context import api_actor, context_of, principal_of
from sigforge.web.openapi import BEARER
from sigforge.web.schemas import PasswordChange, SessionCreate, SessionOut

PATH = "/api/v1/session"


def _principal(request: Request[Any, Any, Any]) -> Principal:
    principal = principal_of(request)
    assert principal is not None, "the signed_in guard runs first"
    return principal


class SessionController(Controller):
    path = PATH
    tags = ["session"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Sign in: a bearer token (and the console's session cookie)",
        description="A wrong name, a wrong password, a disabled or a locked account all answer the same 401. "
        "After five wrong passwords in a row the account is locked for five minutes. When `must_change_password` "
        "is true the token only works for `/api/v1/session` until `POST /api/v1/session/password` succeeds.",
    )
    def sign_in(self, request: Request[Any, Any, Any], data: JSONBody[SessionCreate]) -> Response[SessionOut]:
        result = context_of(request).users().sign_in(data.name, data.password, api_actor(request))
        response = Response(SessionOut.from_principal(result.principal, token=result.token), status_code=201)
        response.set_cookie(
            COOKIE,
            result.token,
            max_age=int(TOKEN_LIFETIME.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @get("/", guards=[signed_in], security=BEARER, sync_to_thread=False, summary="Who is signed in")
    def who_am_i(self, request: Request[Any, Any, Any]) -> SessionOut:
        return SessionOut.from_principal(_principal(request))

    @delete(
        "/",
        guards=[signed_in],
        security=BEARER,
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        summary="Sign out",
    )
    def sign_out(self, request: Request[Any, Any, Any]) -> Response[None]:
        context_of(request).users().sign_out(_principal(request), api_actor(request))
        response = Response(None, status_code=HTTP_204_NO_CONTENT)
        # Expire it with the same attributes it was set with (Litestar's delete_cookie would say SameSite=Lax).
        response.set_cookie(COOKIE, "", max_age=0, path="/", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")  # fmt: skip
        return response

    @post(
        "/password",
        guards=[signed_in],
        security=BEARER,
        status_code=200,
        sync_to_thread=True,
        summary="Change your own password",
        description="Needs the current password. The new one needs at least 12 characters, no leading or trailing "
        "white space and must differ from the current one. Every other session of the user is signed out.",
    )
    def change_password(self, request: Request[Any, Any, Any], data: JSONBody[PasswordChange]) -> SessionOut:
        principal = (
            context_of(request)
            .users()
            .change_password(_principal(request), data.current_password, data.new_password, api_actor(request))
        )
        return SessionOut.from_principal(principal)
