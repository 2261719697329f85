"""The hosted IM's state-change callback as a FastAPI router: every ``Login`` counts the
user as active that day (DAU). Only calls the engine.

The hosted service posts ``?SdkAppid=N&CallbackCommand=State.StateChange&...`` with a JSON
body and expects HTTP 200 with ``{"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}``
within 2 seconds. Other commands are answered OK and ignored; a malformed or unsigned request
gets a FAIL answer (HTTP 200; 503 when the store is down), never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from limiter.errors import InvalidRequest, LimiterError, StoreUnavailable
from limiter.fastapi import get_limiter
from limiter.ids import check_app_id
from limiter.jsontext import parse_json
from limiter.settings import Settings, load_settings

log = logging.getLogger("limiter.callbacks")

STATE_CHANGE = "State.StateChange"
# How far RequestTime may be from now for a signed callback to be accepted.
SIGNATURE_WINDOW = timedelta(seconds=60)
# ErrorCode of a FAIL answer (the hosted service only tells 0 from non-zero).
FAILED = 1


class CallbackAnswer(BaseModel):
    """What the hosted service expects back."""

    ActionStatus: Literal["OK", "FAIL"]
    ErrorCode: int
    ErrorInfo: str


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


# The request as the hosted service sends it (read by hand, so that a malformed one gets a
# FAIL answer rather than FastAPI's 422): documented here for the OpenAPI document.
_CALLBACK_REQUEST: dict[str, Any] = {
    "parameters": [
        _query("SdkAppid", "the app", required=True),
        _query("CallbackCommand", "e.g. State.StateChange; wins over the body's"),
        _query("contenttype", "json"),
        _query("ClientIP", "the client's address"),
        _query("OptPlatform", "the client's platform"),
        _query("RequestTime", "Unix seconds (signed callbacks)"),
        _query("Sign", "hex SHA-256 of token + RequestTime (signed callbacks)"),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "CallbackCommand": {"type": "string"},
                        "EventTime": {"type": "integer", "description": "Unix milliseconds"},
                        "Info": {
                            "type": "object",
                            "properties": {
                                "Action": {"type": "string"},
                                "To_Account": {"type": "string"},
                                "Reason": {"type": "string"},
                            },
                        },
                    },
                }
            }
        },
    },
}


def _answer(error: str = "", status_code: int = 200) -> JSONResponse:
    body = CallbackAnswer(
        ActionStatus="FAIL" if error else "OK",
        ErrorCode=FAILED if error else 0,
        ErrorInfo=error,
    )
    return JSONResponse(body.model_dump(), status_code=status_code)


def expected_sign(token: str, request_time: str) -> str:
    """The ``Sign`` the hosted service sends: hex SHA-256 of token + RequestTime."""
    return hashlib.sha256((token + request_time).encode("utf-8")).hexdigest()


def callback_router(settings: Settings | None = None, *, token: str | None = None) -> APIRouter:
    """A router answering the hosted IM's callbacks at its mount point
    (``app.include_router(callback_router(), prefix="/callback")``).

    ``token`` (else ``LIMITER_CALLBACK_TOKEN``) turns on signature checks; without one the
    router logs once that callbacks are unauthenticated.
    """
    if token is None:
        secret = load_settings(settings).callback_token
        token = None if secret is None else secret.get_secret_value()
    if not token:
        log.warning("LIMITER_CALLBACK_TOKEN is not set: IM callbacks are not authenticated")
    router = APIRouter(tags=["callbacks"])

    @router.post(
        "",
        summary="The hosted IM's callback (State.StateChange logins count toward DAU)",
        response_model=CallbackAnswer,
        responses={503: {"model": CallbackAnswer, "description": "the limit store is down"}},
        openapi_extra=_CALLBACK_REQUEST,
    )
    async def callback(request: Request) -> JSONResponse:
        query = request.query_params
        try:
            if token:
                _check_signature(token, query.get("Sign"), query.get("RequestTime"), request)
            app = check_app_id(query.get("SdkAppid", ""))
            body = await _body(request)
            command = query.get("CallbackCommand") or body.get("CallbackCommand")
            if command != STATE_CHANGE:
                return _answer()
            user, at = _login(body)
            if user is not None:
                await get_limiter(request).record_login(app, user, at)
        except StoreUnavailable:
            return _answer("the limit store is unavailable; retry", status_code=503)
        except InvalidRequest as exc:
            return _answer(str(exc))
        except LimiterError as exc:
            log.warning("callback not processed: %s", exc)
            return _answer(str(exc))
        return _answer()

    return router


def _check_signature(
    token: str, sign: str | None, request_time: str | None, request: Request
) -> None:
    if not sign or not request_time:
        raise InvalidRequest("Sign", "the callback is not signed (Sign and RequestTime)")
    try:
        sent_at = datetime.fromtimestamp(int(request_time), UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest("RequestTime", "must be Unix seconds") from None
    now = get_limiter(request).now()
    if abs(now - sent_at) > SIGNATURE_WINDOW:
        raise InvalidRequest("RequestTime", "is more than 60 s away from now")
    expected = expected_sign(token, request_time).encode()
    if not hmac.compare_digest(sign.lower().encode("utf-8", "replace"), expected):
        raise InvalidRequest("Sign", "does not match")


async def _body(request: Request) -> dict[str, Any]:
    body = parse_json(await request.body(), "body")
    if not isinstance(body, dict):
        raise InvalidRequest("body", "must be a JSON object")
    return body


def _login(body: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """The user of a ``Login`` and when it happened (``EventTime``, ms), else (None, None)."""
    info = body.get("Info")
    if not isinstance(info, dict):
        raise InvalidRequest("Info", "must be an object")
    action = info.get("Action")
    if not isinstance(action, str):
        raise InvalidRequest("Info.Action", "must be a string")
    if action != "Login":
        return None, None
    user = info.get("To_Account")
    if not isinstance(user, str):
        raise InvalidRequest("Info.To_Account", "must be a user id")
    event_time = body.get("EventTime")
    if event_time is None:
        return user, None
    if isinstance(event_time, bool) or not isinstance(event_time, int):
        raise InvalidRequest("EventTime", "must be Unix milliseconds")
    try:
        return user, datetime.fromtimestamp(event_time / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest("EventTime", "is out of range") from None
