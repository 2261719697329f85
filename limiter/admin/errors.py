"""How the admin routes answer errors, all as ``application/problem+json`` (a refusal to
authenticate, a :class:`LimiterError`, a request that does not validate), and document them."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict

from limiter.admin.auth import _Unauthorized
from limiter.errors import LimiterError
from limiter.fastapi import PROBLEM_JSON, limiter_exception_handler, problem_response


class Problem(BaseModel):
    """An error answer (application/problem+json); on a 422, `field` names the bad input."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()


def documented(description: str) -> dict[str, Any]:
    """An OpenAPI response: a problem+json answer, with what it means."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


_COMMON_ERRORS: dict[str, Any] = {
    "401": documented("No admin token, or a wrong one"),
    # Merged into FastAPI's own 422 (the body's validation errors, application/json).
    "422": {"content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}},
    "503": documented("The limit store did not answer; retry"),
}
# FastAPI's own answer to a body it cannot decode.
_UNREADABLE_BODY = {
    "description": "The body is not JSON text",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"detail": {"type": "string"}},
                "required": ["detail"],
            }
        }
    },
}
# What every DELETE shares: 204 when it removed something, 404 problem+json when not.
DELETING: dict[str, Any] = {
    "status_code": 204,
    "response_class": Response,
    "responses": {404: documented("No such expansion or override")},
}


class AdminRoute(APIRoute):
    """A route that answers :class:`LimiterError` (and a failed authentication) itself, as
    ``application/problem+json``, so the host app need not install limiter's exception
    handler; it also documents those answers."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        errors = dict(_COMMON_ERRORS)
        if self.body_field is not None:
            errors["400"] = _UNREADABLE_BODY
        self.openapi_extra = {"responses": errors, **(self.openapi_extra or {})}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except _Unauthorized:
                detail = "give a valid admin token: Authorization: Bearer <token>"
                return problem_response(401, "Unauthorized", detail, {"WWW-Authenticate": "Bearer"})
            except LimiterError as exc:
                return await limiter_exception_handler(request, exc)
            except RequestValidationError as exc:
                return _invalid_request(exc)

        return answer


def _invalid_request(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (``detail``: loc, msg, type per problem) without echoing the input, which
    FastAPI's own handler fails to encode when it is bytes that are not UTF-8 (a 500)."""
    detail = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def deleted(found: bool, missing: str) -> Response:
    """A DELETE's answer: 204, or a 404 saying what was ``missing``."""
    return Response(status_code=204) if found else problem_response(404, "Not found", missing)
