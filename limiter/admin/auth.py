"""Who may call the admin API: operators holding a named bearer token, checked before the
body is read; the token's name is the audit log's actor."""

import hmac
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from limiter.errors import ConfigurationError
from limiter.settings import MIN_ADMIN_TOKEN_LENGTH

_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken")


class _Unauthorized(Exception):
    """No valid admin token; the admin routes answer it with a 401."""


class AdminToken:
    """Dependency: the name of the admin token the request carries; a 401 without one."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        if not tokens:
            raise ConfigurationError("admin API: no admin token configured (LIMITER_ADMIN_TOKENS)")
        for name, token in tokens.items():
            if not name or len(token) < MIN_ADMIN_TOKEN_LENGTH:
                raise ConfigurationError(
                    f"admin API: token {name!r}: names must be non-empty, tokens at least "
                    f"{MIN_ADMIN_TOKEN_LENGTH} characters"
                )
        self._tokens = [(name, token.encode()) for name, token in tokens.items()]

    async def __call__(self, request: Request, _: Annotated[object, Depends(_bearer)]) -> str:
        # The header is read here, not from ``_bearer`` (kept for the OpenAPI scheme): that one
        # takes the first of two Authorization headers and strips the token's whitespace.
        values = request.headers.getlist("authorization")
        scheme, _, presented = values[0].partition(" ") if len(values) == 1 else ("", "", "")
        if scheme.lower() != "bearer" or not presented:
            raise _Unauthorized
        given = presented.encode("latin-1")  # the header's own bytes (Starlette decodes latin-1)
        actor = None
        for name, token in self._tokens:
            # Compare with every token whatever matched already: the time taken names none.
            if hmac.compare_digest(given, token) and actor is None:
                actor = name
        if actor is None:
            raise _Unauthorized
        # The routers are built once for every set of tokens: :data:`Actor` reads it here.
        request.state.admin_actor = actor
        return actor


async def _actor(request: Request) -> str:
    # AdminToken, a dependency of the router that includes every admin route, runs first; a
    # route reached without it has no actor and is refused rather than audited as nobody.
    actor = getattr(request.state, "admin_actor", None)
    if not isinstance(actor, str):
        raise _Unauthorized
    return actor


Actor = Annotated[str, Depends(_actor)]
"""The name of the token the request was authenticated with (the audit log's actor)."""
