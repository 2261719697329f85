"""The admin HTTP API, for operators holding a named bearer token: one FastAPI router per
resource over the engine's plan changes, reports, reconcile, billing and health."""

from collections.abc import Mapping

from fastapi import APIRouter, Depends

from limiter.admin import apps, billing, expansions, overrides, plans, reconcile, reports
from limiter.admin.auth import AdminToken
from limiter.settings import Settings, load_settings

__all__ = ["AdminToken", "admin_router"]

# In this order in the OpenAPI document.
_RESOURCES = (apps, plans, expansions, overrides, reports, reconcile, billing)


def admin_router(
    settings: Settings | None = None, *, tokens: Mapping[str, str] | None = None
) -> APIRouter:
    """The admin API's routes; mount them under any prefix:
    ``app.include_router(admin_router(), prefix="/admin")``. They only call the engine on
    ``app.state.limiter``, never Redis itself.

    ``tokens`` (name -> token) default to ``settings.admin_tokens`` (``LIMITER_ADMIN_TOKENS``
    when ``settings`` is None); without any it raises :class:`ConfigurationError`. A request's
    token name is the audit log's actor."""
    if tokens is None:
        configured = load_settings(settings).admin_tokens
        tokens = {name: token.get_secret_value() for name, token in configured.items()}
    # A dependency of the whole router, solved before each route's own parameters: without a
    # valid token a request is 401, whatever its body says.
    router = APIRouter(tags=["admin"], dependencies=[Depends(AdminToken(tokens))])
    for resource in _RESOURCES:
        router.include_router(resource.router)
    return router
