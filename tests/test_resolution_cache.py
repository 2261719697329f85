"""Limits resolved once per cached plan never outlive what they depend on (limiter.ops.context)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from limiter import Status, Suspended
from limiter.testing import ManualClock, memory_limiter
from tests.conftest import APP, at


def test_cached_limits_follow_an_override_expiry_the_end_of_grace_and_a_clock_step_back() -> None:
    clock = ManualClock(at(2026, 11, 26, 12, 0))
    engine = memory_limiter(clock=clock, cache_seconds=60)
    engine.set_edition(APP, "pro", purchased_on=date(2026, 10, 27))  # paid through 2026-11-26
    engine.set_override(APP, "friends", 1, expires_at=at(2026, 11, 26, 12, 0, 30))
    engine.register_users(APP, ["owner", "a", "b", "c", "m1", "m2"])  # accounts first
    engine.create_group(APP, "g", "Public", "owner")
    assert engine.limits(APP).app["friends"].value == 1  # plan and limits cached for 60 s
    clock.advance(timedelta(seconds=30))  # the override expires inside the cache window
    assert engine.limits(APP).app["friends"].value == 3000
    assert engine.add_friends(APP, "a", ["b", "c"]).added == ("b", "c")
    clock.set(at(2026, 11, 26, 23, 59, 59))
    assert engine.limits(APP).status is Status.ACTIVE
    clock.advance(timedelta(seconds=1))  # the last paid day ends: grace, additions work
    assert engine.limits(APP).status is Status.GRACE
    assert engine.add_members(APP, "g", ["m1"]).added == ("m1",)
    clock.set(at(2026, 11, 27, 23, 59, 59))
    assert engine.limits(APP).status is Status.GRACE
    clock.advance(timedelta(seconds=1))  # grace ends inside the cache window
    with pytest.raises(Suspended):
        engine.add_members(APP, "g", ["m2"])
    clock.set(at(2026, 11, 27, 23, 59))  # a clock stepping back is resolved afresh
    assert engine.limits(APP).status is Status.GRACE
