"""The store outside the happy path: closed and reused, forked after a reconcile, a marker key
that is not a marker, Redis replies that mean "not now", and an admin token outside ASCII."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import warnings

import pytest
import redis
from starlette.requests import Request

from limiter import AccountRecord, Outcome, StoreUnavailable
from limiter.admin import AdminToken
from limiter.admin.auth import _Unauthorized
from limiter.store.redis import _outage
from limiter.testing import memory_limiter
from tests.conftest import APP, Backend


def test_a_closed_engine_reconciles_again() -> None:
    engine = memory_limiter()
    engine.reconcile(APP, [AccountRecord("a")])
    engine.close()
    assert engine.reconcile(APP, [AccountRecord("a"), AccountRecord("b")]).accounts.after == 2


def test_a_process_forked_after_a_reconcile_reconciles_on_its_own_thread() -> None:
    """The parent's background sender does not exist in a fork: the child must start its own
    (a gunicorn --preload worker after the master reconciled)."""
    engine = memory_limiter()
    engine.reconcile(APP, [AccountRecord("a")])
    with warnings.catch_warnings():  # 3.12+: forking a process that has threads warns
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child)
        after = engine.reconcile(APP, [AccountRecord("a"), AccountRecord("b")]).accounts.after
        os._exit(0 if after == 2 else 1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    pytest.fail("the forked child's reconcile hung")


def test_a_marker_key_of_another_type_is_logged_and_the_request_goes_on(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    from limiter import Limiter, Settings, SyncStore

    client = backend.sync_client()
    client.rpush(f"limiter:{{{APP}}}:marker", "not a marker")
    engine = Limiter(SyncStore(client), settings=Settings(redis_url="memory://unused"))
    with caplog.at_level(logging.ERROR, logger="limiter"):
        assert engine.register_users(APP, ["a"]).items[0].outcome is Outcome.ADDED
    assert f"marker check at limiter:{{{APP}}}:marker failed" in caplog.text


@pytest.mark.parametrize(
    "reply",
    [
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist",
        "NOREPLICAS Not enough good replicas to write.",
        "BUSY Redis is busy running a script.",
    ],
)
def test_replies_that_mean_not_now_are_outages(reply: str) -> None:
    assert isinstance(_outage(redis.ResponseError(reply)), StoreUnavailable)


def test_a_wrong_command_is_not_an_outage() -> None:
    assert _outage(redis.ResponseError("WRONGTYPE Operation against a key")) is None


def test_an_admin_token_outside_ascii_matches_its_utf8_bytes_only() -> None:
    """Starlette decodes header bytes as latin-1; the token is compared as the bytes sent (an
    ASGI scope built by hand: the test client re-encodes header values)."""
    token = "pässwörd-" + "x" * 20
    check = AdminToken({"ops": token})

    def presented(value: bytes) -> str:
        scope = {"type": "http", "headers": [(b"authorization", b"Bearer " + value)]}
        return asyncio.run(check(Request(scope), None))

    assert presented(token.encode()) == "ops"
    with pytest.raises(_Unauthorized):  # the router answers it with a 401
        presented(token.encode("latin-1"))
