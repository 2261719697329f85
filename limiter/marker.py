"""Detects a flushed or replaced Redis data set, so that losing every count is reported
instead of silently starting again from zero.

The first engine that talks to a data set writes a marker key, ``<prefix>:marker``, holding a
random id and the instant it was written (``SET NX``: an existing marker is never replaced).
Each engine remembers the marker it saw and reads it again when a check is due: on its first
request, on the first request after a round trip met an outage (the server may come back
empty), and every ``marker_check_seconds`` (monotonic time). A missing or different marker
means the data set was flushed or replaced: the engine logs it at ERROR, counts it, adopts the
new marker and carries on; traffic is never refused for it.

What it cannot see: a process whose first contact is with an already-flushed data set finds no
marker, exactly as on a new one (it writes one and logs at INFO that the two look alike); and in
a Redis Cluster the marker lives on one shard, so a flush of another shard goes unnoticed.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from limiter.clock import Clock
from limiter.results import DataStatus
from limiter.store import reads
from limiter.store.requests import call

if TYPE_CHECKING:
    from limiter.ops.context import Op

log = logging.getLogger("limiter")

# Everything the library keeps only in Redis, named in the report of a lost data set.
LOST_WITH_THE_DATA = (
    "counters (accounts, friendships, groups, memberships), plans (editions), expansions, "
    "overrides, the purchase ledger, the audit log and metering (DAU, peaks, bandwidth)"
)


class DataWatch:
    """One engine's watch over its data set's marker; see the module docstring."""

    def __init__(
        self,
        key: str,
        clock: Clock,
        check_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key  # KeyLayout.marker()
        self.clock = clock
        self.check_seconds = check_seconds
        self.monotonic = monotonic
        self.status = DataStatus(None, None, None, 0, None)
        self._value: str | None = None  # the marker as stored: "<id> <ISO instant>"
        self._next_check: float | None = None  # monotonic; None: on the next request

    def outage(self) -> None:
        """A round trip met an outage: check on the next request (Redis may return empty)."""
        self._next_check = None

    def due(self) -> bool:
        """Whether a check is due now; the next one is then planned at once, so concurrent
        requests do not check as well."""
        if self._next_check is not None and self.monotonic() < self._next_check:
            return False
        self._next_check = self.monotonic() + self.check_seconds
        return True

    def check_failed(self) -> None:
        """A check failed for another reason than an outage (the key holds another type, an
        ACL refuses it): logged, and the request goes on."""
        log.exception("the data-set marker check at %s failed; the request goes on", self.key)

    def check(self) -> Op[DataStatus]:
        """Read the marker (writing it if missing) and report a change: one round trip."""
        candidate = f"{secrets.token_hex(8)} {self.clock.now().isoformat()}"
        found = yield from call(reads.marker(self.key, candidate))
        now = self.clock.now()
        if self._value is None and found == candidate:
            log.info(
                "no data-set marker at %s: a new Redis data set, or one flushed before this "
                "process started (the two look alike); marker written",
                self.key,
            )
        elif self._value is not None and found != self._value:
            self._lost(found, now)
        self._value = found
        self._next_check = self.monotonic() + self.check_seconds
        marker, since = _parsed(found)
        self.status = replace(self.status, marker=marker, since=since, checked_at=now)
        return self.status

    def _lost(self, found: str | None, now: datetime) -> None:
        log.error(
            "the Redis data set was flushed or replaced (marker %s was %r, is now %r): lost "
            "with it are %s. Reconcile each app from its source of truth to restore the "
            "counters (POST /admin/apps/{app}/reconcile, `limiter reconcile`); set plans, "
            "expansions and overrides again through the admin API",
            self.key,
            self._value,
            found,
            LOST_WITH_THE_DATA,
        )
        self.status = replace(self.status, resets=self.status.resets + 1, last_reset_at=now)


def _parsed(value: str | None) -> tuple[str | None, datetime | None]:
    """The id and the instant of a stored marker (an instant that does not parse: None)."""
    if value is None:
        return None, None
    marker, _, written = value.partition(" ")
    try:
        return marker, datetime.fromisoformat(written)
    except ValueError:
        return marker, None
