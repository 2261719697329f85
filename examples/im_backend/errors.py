"""The example's answers for errors: on ``/v4`` every failure is the IM's FAIL shape (HTTP 200,
503 with ``Retry-After`` for an outage or a failed database); elsewhere the library's answers."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from examples.im_backend import shapes
from limiter.errors import (
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    LimiterError,
    NotRegistered,
    Refused,
    StoreUnavailable,
)
from limiter.fastapi import limiter_exception_handler

log = logging.getLogger("examples.im_backend")


def install_error_handlers(app: FastAPI) -> None:
    """Route the limiter's errors, FastAPI's own refusals and SQLite's failures to the
    handlers below."""
    app.add_exception_handler(LimiterError, limiter_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(sqlite3.Error, database_error)
    app.add_exception_handler(HTTPException, http_error)


def _service(request: Request) -> str | None:
    """The ``<service>`` of a ``/v4/<service>/<command>`` request ("" for another ``/v4``
    path), else None."""
    parts = request.url.path.split("/")
    if len(parts) < 2 or parts[1] != "v4":
        return None
    return parts[2] if len(parts) > 3 else ""


def _im(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    """An IM answer; a 503 says when to retry."""
    headers = {"Retry-After": "1"} if status_code == 503 else None
    return JSONResponse(body, status_code=status_code, headers=headers)


async def limiter_error(request: Request, exc: Exception) -> Response:
    """A refusal with its IM code, bad input with the service's code, an outage 503."""
    service = _service(request)
    if service is None:
        return await limiter_exception_handler(request, exc)
    if isinstance(exc, Refused | GroupNotFound | GroupExists):
        return _im(shapes.fail(exc.code, str(exc)))
    if isinstance(exc, InvalidRequest | NotRegistered):
        return _im(shapes.fail(shapes.INVALID.get(service, 90001), str(exc)))
    if isinstance(exc, StoreUnavailable):
        info = "the limit store is unavailable; retry (nothing was added; a removal completes)"
        return _im(shapes.fail(shapes.INTERNAL.get(service, 90994), info), 503)
    log.error("%s: %s", request.url.path, exc)
    return _im(shapes.fail(shapes.INTERNAL.get(service, 90994), str(exc)))


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
    if error["type"] == "json_invalid":
        return f"body: not valid JSON ({error.get('ctx', {}).get('error', error['msg'])})"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"


async def validation_error(request: Request, exc: Exception) -> Response:
    """A body or query FastAPI refused: its first three distinct problems, naming the fields."""
    service = _service(request)
    if service is None or not isinstance(exc, RequestValidationError):
        return await request_validation_exception_handler(request, exc)  # type: ignore[arg-type]
    problems = dict.fromkeys(_describe(error) for error in exc.errors())
    info = "; ".join(list(problems)[:3])
    return _im(shapes.fail(shapes.INVALID.get(service, 90001), info))


async def database_error(request: Request, exc: Exception) -> Response:
    """SQLite failed (its transaction rolled back): 503, retry."""
    log.error("%s: the database failed: %s", request.url.path, exc)
    service = _service(request) or ""
    info = "the backend's database failed; nothing was changed; retry"
    return _im(shapes.fail(shapes.INTERNAL.get(service, 90994), info), 503)


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own refusals (a body it cannot parse: nested too deeply, a number with more
    digits than Python converts, or not UTF-8; an unknown command; a method other than POST)
    in the IM's shape on ``/v4``."""
    service = _service(request)
    if service is None or not isinstance(exc, HTTPException):
        return await http_exception_handler(request, exc)  # type: ignore[arg-type]
    code = shapes.INVALID.get(service, 90001)
    if exc.status_code == 400:
        info = (
            "body: could not be read as JSON (nested too deeply, a number too long, or not UTF-8)"
        )
        return _im(shapes.fail(code, info))
    if exc.status_code == 404:
        return _im(shapes.fail(code, f"unknown command {request.url.path}"))
    # Not an IM request at all (a GET): HTTP says so, the body is still the IM's shape.
    info = f"{request.url.path}: {exc.detail}"
    return JSONResponse(shapes.fail(code, info), exc.status_code, headers=exc.headers)
