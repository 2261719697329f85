"""Detects a flushed or replaced Redis data set, so that losing every count is reported
instead of silently starting again from zero.

Each app has a marker key under its own hash tag, ``<prefix>:{<app>}:marker``, holding a random
id and the instant it was written; the first engine that serves the app writes it (``SET NX``:
an existing marker is never replaced). Each engine remembers the markers it saw and reads an
app's again before serving it when a check is due: on its first request for the app, on the
first request after a round trip met an outage (the server may come back empty), and every
``marker_check_seconds`` (monotonic time). A missing or different marker means the app's data
was flushed or replaced: the engine logs it at ERROR, counts it, adopts the new marker and
carries on; traffic is never refused for it, and a check that meets an outage lets the
request go on to meet it on its own. Being under the app's tag, the marker is on the app's own
shard of a Redis Cluster: a flushed shard is seen for its apps, and a shard that is down
never fails the requests of another.

``check_data()`` reads the data set's marker, ``<prefix>:marker`` (written the same way), for
a health check of the data set as a whole.

What it cannot see: a process whose first contact with an app is after a flush finds no
marker, exactly as for a new app (it writes one).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from limiter.clock import Clock
from limiter.errors import InvalidRequest
from limiter.results import DataStatus
from limiter.store import reads
from limiter.store.keys import KeyLayout
from limiter.store.requests import call

if TYPE_CHECKING:
    from limiter.ops.context import Op

log = logging.getLogger("limiter")

# Everything the library keeps only in Redis, named in the report of a lost data set.
LOST_WITH_THE_DATA = (
    "counters (accounts, friendships, groups, memberships), plans (editions), expansions, "
    "overrides, the purchase ledger, the audit log and metering (DAU, peaks, bandwidth)"
)
# Apps whose markers one engine remembers (the least recently served are forgotten: their
# next request checks again and adopts what it finds).
REMEMBERED_APPS = 10_000


class _Seen:
    """What an engine knows of one marker: its stored value, when it is next due (monotonic;
    None: on the next request) and the outage count at the last check."""

    __slots__ = ("next_check", "outages", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.next_check: float | None = None
        self.outages = -1


class DataWatch:
    """One engine's watch over its apps' markers; see the module docstring."""

    def __init__(
        self,
        layout: KeyLayout,
        clock: Clock,
        check_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.layout = layout
        self.clock = clock
        self.check_seconds = check_seconds
        self.monotonic = monotonic
        self.status = DataStatus(None, None, None, 0, None)
        self._apps: OrderedDict[str, _Seen] = OrderedDict()
        self._data_set = _Seen()
        self._outages = 0  # round trips that met an outage: every marker is due after one

    def outage(self) -> None:
        """A round trip met an outage: check each app on its next request (Redis may return
        empty)."""
        self._outages += 1

    def due(self, app: str) -> bool:
        """Whether ``app``'s check is due now; the next one is then planned at once, so
        concurrent requests do not check as well. An app id that is not valid is never due
        (its operation refuses it)."""
        seen = self._apps.get(app)
        if seen is None:
            try:
                self.layout.app(app)
            except InvalidRequest:
                return False
            seen = self._apps[app] = _Seen()
            if len(self._apps) > REMEMBERED_APPS:
                self._apps.popitem(last=False)
        else:
            self._apps.move_to_end(app)
        now = self.monotonic()
        if seen.outages == self._outages and seen.next_check is not None and now < seen.next_check:
            return False
        seen.next_check, seen.outages = now + self.check_seconds, self._outages
        return True

    def check_failed(self, app: str) -> None:
        """A check failed for another reason than an outage (the key holds another type, an
        ACL refuses it): logged, and the request goes on."""
        log.exception(
            "the data-set marker check at %s failed; the request goes on",
            self.layout.app(app).marker,
        )

    def check(self, app: str) -> Op[DataStatus]:
        """Read ``app``'s marker (writing it if missing) and report a change: one round trip."""
        seen = self._apps.get(app) or _Seen()
        return self._check(self.layout.app(app).marker, seen, f"app {app}")

    def check_data(self) -> Op[DataStatus]:
        """Read the data set's marker (writing it if missing): one round trip."""
        return self._check(self.layout.marker(), self._data_set, "the data set")

    def _check(self, key: str, seen: _Seen, whose: str) -> Op[DataStatus]:
        candidate = f"{secrets.token_hex(8)} {self.clock.now().isoformat()}"
        found = yield from call(reads.marker(key, candidate))
        now = self.clock.now()
        if seen.value is None and found == candidate:
            log.debug(
                "no marker at %s (%s): new, or flushed before this process saw it", key, whose
            )
        elif seen.value is not None and found != seen.value:
            self._lost(key, whose, seen.value, found, now)
        seen.value = found
        seen.next_check, seen.outages = self.monotonic() + self.check_seconds, self._outages
        marker, since = _parsed(found)
        self.status = replace(self.status, marker=marker, since=since, checked_at=now)
        return self.status

    def _lost(self, key: str, whose: str, was: str, found: str | None, now: datetime) -> None:
        log.error(
            "the Redis data of %s was flushed or replaced (marker %s was %r, is now %r): lost "
            "with it are %s. Reconcile each app from its source of truth to restore the "
            "counters (POST /admin/apps/{app}/reconcile, `limiter reconcile`); set plans, "
            "expansions and overrides again through the admin API",
            whose,
            key,
            was,
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
