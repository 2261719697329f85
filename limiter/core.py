"""The engine's logic, free of I/O: each operation is a generator that yields the round trips
it needs (:class:`ScriptCall`, :class:`Pipeline`) and returns its result.

The async engine and the sync facade (``engine.py``) only drive these generators, so both
share every rule here. A store failure is thrown back into the generator, where the outage
policy decides between raising and a degraded, allowed answer.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from limiter.billing import Bill, BillingHistory, compute_bill
from limiter.catalog import LIMIT_NAMES, Catalog
from limiter.clock import Clock
from limiter.errors import (
    ConfigurationError,
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    Lift,
    OutsideRetention,
    PlanConflict,
    Refusal,
    Refused,
    Scope,
    StoreUnavailable,
    Suspended,
)
from limiter.keys import AppKeys, KeyLayout, check_entity_id
from limiter.limits import (
    EffectiveLimits,
    Limit,
    Status,
    edition_state,
    resolve,
    unchanged_until,
)
from limiter.metering import LoginRecorded, Month, MonthlyUsage
from limiter.periods import Period, consecutive_periods, day_end, local_date
from limiter.plan import (
    EDITION_FIELD,
    ExpansionGrant,
    LedgerEntry,
    Override,
    PlanState,
    Purchase,
    decode,
    decode_ledger,
    edition_field_value,
    expansion_field,
    expansion_field_value,
    ledger_entry_value,
    override_field,
    override_field_value,
)
from limiter.rebuild import Rebuild
from limiter.results import (
    AuditEntry,
    BatchResult,
    DeletedUser,
    DeleteResult,
    FriendItem,
    GroupCreated,
    GroupDestroyed,
    GroupUsage,
    Item,
    MembersResult,
    Outcome,
    OverLimit,
    Usage,
    UserUsage,
)
from limiter.settings import Settings
from limiter.stats import Stats
from limiter.store import Pipeline, Request, ScriptCall

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
Op = Generator[Request, Any, T]

log = logging.getLogger("limiter")

USER_OVERRIDE_LIMITS = ("friends", "groups_per_user")
GROUP_OVERRIDE_LIMITS = ("group_members",)
_ADDED, _ALREADY = 1, 2
_CAS_ATTEMPTS = 20
PLAN_CACHE_APPS = 10_000
BILLING_DAYS_KEPT = 8
MAX_MONTHS = 120
# How far ahead of the clock an event's own time may be (clients' clocks drift).
FUTURE_TOLERANCE = timedelta(minutes=5)
# Entries per round trip when a report or a rebuild walks a relation set.
SCAN_CHUNK = 5000
# Who the audit log names for a change made through the Python API without an actor.
DEFAULT_ACTOR = "python"
# What each reservable action needs from its caller (besides the app); optional ones last.
ACTION_PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "register_users": ("users",),
    "add_friends": ("user", "peers", "both_ways"),
    "create_group": ("group", "type", "owner", "members"),
    "add_members": ("group", "users"),
}
_OPTIONAL_PARAMETERS = {"both_ways": True, "members": ()}


@dataclass(frozen=True)
class Reservation:
    """An addition made ahead of the caller's own work, undone by ``release`` if that fails."""

    action: str
    app: str
    result: BatchResult | GroupCreated
    requester: str | None = None  # add_friends: whose list the peers were added to


@dataclass(frozen=True)
class _Resolution:
    """An app's limits resolved from one copy of its plan at ``since``; they hold until
    ``until`` (see :func:`unchanged_until`), so decisions in between reuse them."""

    plan: PlanState
    since: datetime
    until: datetime
    limits: EffectiveLimits
    # add_members' ARGV of the group types: "\0type\0limit\0counted" each, then "\0"
    member_types: str


@dataclass(frozen=True)
class _BillingDay:
    """One billing day as metering writes it: its text, its month's, when it stops taking
    logins (its end plus ``late_seconds``) and when its month's metering may go."""

    day: date
    text: str
    month: str
    closes: datetime
    kept_until: datetime


def _seconds_left(until: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``until``, at least 1 (a TTL)."""
    return max(1, int((until - now).total_seconds()))


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    """Store ``value`` in a per-app cache, dropping its oldest entry when it is full (app ids
    come from clients: the caches stay bounded)."""
    if key not in cache and len(cache) >= PLAN_CACHE_APPS:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _member_types(catalog: Catalog, limits: EffectiveLimits) -> str:
    """add_members' argument of the group types: "\0type\0limit\0counted" each, then "\0"."""
    parts = []
    for group_type, found in limits.group_members.items():
        counted = catalog.group_types[group_type].counts_toward_groups_per_user
        parts.append(f"\0{group_type}\0{_cap(found)}\0{int(counted)}")
    return "".join(parts) + "\0"


def _pairs(reply: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [reply[i : i + size] for i in range(0, len(reply), size)]


def _cap(limit: Limit) -> int:
    return -1 if limit.value is None else limit.value


class Core:
    """The rules of every operation; holds the catalog, settings, clock and the plan cache."""

    def __init__(self, settings: Settings, catalog: Catalog, clock: Clock) -> None:
        if settings.default_edition not in catalog.editions:
            raise ConfigurationError(
                f"default_edition: {settings.default_edition!r} is not an edition of the catalog"
            )
        self.settings = settings
        self.catalog = catalog
        self.clock = clock
        self.keys = KeyLayout(settings.key_prefix)
        self.tz = ZoneInfo(settings.timezone)
        self.stats = Stats()
        # app -> (when this process's copy goes stale, the copy)
        self._plans: dict[str, tuple[datetime, PlanState]] = {}
        # app -> its limits, resolved from the copy above (decisions reuse them)
        self._resolutions: dict[str, _Resolution] = {}
        self._app_keys: dict[str, AppKeys] = {}
        self._days: dict[date, _BillingDay] = {}
        self._shadow = {
            limit: "1" if settings.mode(limit) == "shadow" else "0" for limit in LIMIT_NAMES
        }

    # -- input -----------------------------------------------------------------------------

    def check_user(self, value: object, field: str = "user") -> str:
        """A valid user id (1..``user_id_max_bytes`` bytes, no control characters)."""
        return check_entity_id(value, field, self.settings.user_id_max_bytes)

    def check_group(self, value: object, field: str = "group") -> str:
        """A valid group id (1..``group_id_max_bytes`` bytes, no control characters)."""
        return check_entity_id(value, field, self.settings.group_id_max_bytes)

    def check_users(self, values: Iterable[str] | str, field: str) -> tuple[str, ...]:
        """Validated user ids in request order; duplicates count once."""
        if isinstance(values, str):
            return (self.check_user(values, field),)
        if not isinstance(values, Iterable) or isinstance(values, bytes | Mapping):
            raise InvalidRequest(field, "must be a list of user ids")
        values = list(values)
        if len(values) > self.settings.max_batch:
            raise InvalidRequest(
                field, f"at most {self.settings.max_batch} ids in one call, got {len(values)}"
            )
        return tuple(dict.fromkeys(self.check_user(value, field) for value in values))

    def _keys(self, app: str) -> AppKeys:
        """The app's keys (its id validated), built once per app: every operation needs them."""
        keys = self._app_keys.get(app)
        if keys is None:
            keys = self.keys.app(app)
            _remember(self._app_keys, app, keys)
        return keys

    # -- plan --------------------------------------------------------------------------------

    def _plan(self, app: str, *, fresh: bool = False) -> Op[PlanState]:
        """The app's plan state, from this process's copy when it is recent enough."""
        now = self.clock.now()
        cached = None if fresh else self._cached_plan(app, now)
        if cached is not None:
            return cached
        until = now + timedelta(seconds=self.settings.cache_seconds)
        stale = self._plans.get(app)
        if stale is not None:  # requests arriving while this read is in flight keep the old copy
            _remember(self._plans, app, (until, stale[1]))
        (fields,) = yield Pipeline((("HGETALL", self._keys(app).plan),))
        plan = decode(fields, self.settings.default_edition)
        _remember(self._plans, app, (until, plan))
        return plan

    def _cached_plan(self, app: str, now: datetime) -> PlanState | None:
        """This process's copy of the app's plan, if it is recent enough at ``now``."""
        cached = self._plans.get(app)
        return cached[1] if cached is not None and now < cached[0] else None

    def _limits(self, app: str) -> Op[EffectiveLimits]:
        return (yield from self._resolution(app)).limits

    def _resolution(self, app: str) -> Op[_Resolution]:
        """The app's limits now: resolved once per copy of its plan, reused until they could
        change (a day boundary, the end of grace, an override expiring)."""
        now = self.clock.now()
        plan = self._cached_plan(app, now)
        if plan is None:
            plan = yield from self._plan(app, fresh=True)
            now = self.clock.now()
        known = self._resolutions.get(app)
        if known is not None and known.plan is plan and known.since <= now < known.until:
            return known
        limits = resolve(self.catalog, plan, now, self.tz)
        until = unchanged_until(self.catalog, plan, now, self.tz)
        known = _Resolution(plan, now, until, limits, _member_types(self.catalog, limits))
        _remember(self._resolutions, app, known)
        return known

    def _require_active(self, app: str, limits: EffectiveLimits) -> None:
        if limits.status is Status.SUSPENDED:
            edition = self.catalog.edition(limits.edition)
            lift = Lift("edition", limits.edition, None, edition.price)
            raise Suspended(Refusal(60020, "package", "app", app, 0, None, limits.edition, lift))

    # -- decisions -----------------------------------------------------------------------------

    def _shadow_flag(self, *limits: str) -> str:
        return "".join([self._shadow[limit] for limit in limits])

    def _refusal(
        self,
        limits: EffectiveLimits,
        code: int,
        limit: str,
        scope: Scope,
        scope_id: str,
        current: int,
        found: Limit,
        group_type: str | None = None,
    ) -> Refusal:
        lift = limits.lift(self.catalog, limit, found, group_type)
        return Refusal(code, limit, scope, scope_id, current, found.value, limits.edition, lift)

    def _judge(
        self, limit: str, outcome: int, refusal: Callable[[int], Refusal]
    ) -> tuple[Outcome, Refusal | None]:
        """Map a script's outcome code to an :class:`Outcome`, counting the decision."""
        if outcome == _ALREADY:
            return Outcome.ALREADY, None
        if outcome == _ADDED:
            self.stats.decisions[(limit, "allowed")] += 1
            return Outcome.ADDED, None
        if outcome < 0:
            waived = refusal(-outcome)
            self._shadowed(waived)
            return Outcome.ADDED, waived
        self.stats.decisions[(limit, "refused")] += 1
        return Outcome.REFUSED, refusal(outcome)

    def _shadowed(self, refusal: Refusal) -> None:
        self.stats.decisions[(refusal.limit, "shadow_refused")] += 1
        log.warning("shadow mode let through: %s", refusal.describe())

    def _raise_first_refusal(
        self, outcomes: Sequence[int], refusal_at: Callable[[int], Refusal]
    ) -> None:
        """All or nothing: raise the first refusal of a reply in which nothing was written."""
        for index, outcome in enumerate(outcomes):
            if outcome > _ALREADY:
                why = refusal_at(index)
                self.stats.decisions[(why.limit, "refused")] += 1
                raise Refused(why)

    def _guarded(self, op: Op[T], fallback: Callable[[], T], what: str) -> Op[T]:
        """Apply the outage policy: ``closed`` raises, ``open`` answers ``fallback()``."""
        if self.settings.outage == "closed":
            return op  # an outage raises through as it is: no wrapper on every round trip
        return _open_outage(op, fallback, what)

    # -- accounts --------------------------------------------------------------------------------

    def register_users(
        self, app: str, users: Iterable[str] | str, *, all_or_nothing: bool = False
    ) -> Op[BatchResult]:
        """Register accounts in order, as many as ``users`` allows; the rest refused (70398).

        ``all_or_nothing``: if any would be refused, register none and raise :class:`Refused`.
        """
        keys = self._keys(app)
        ids = self.check_users(users, "users")

        def run() -> Op[BatchResult]:
            limits = yield from self._limits(app)
            self._require_active(app, limits)
            found = limits.app["users"]
            flags = (self._shadow_flag("users"), int(all_or_nothing))
            args: tuple[str | int, ...] = (_cap(found), *flags, *ids)
            reply = _pairs((yield ScriptCall("register_users", (keys.users,), args)), 2)

            def refusal(code: int, count: int) -> Refusal:
                return self._refusal(limits, code, "users", "app", app, count, found)

            if all_or_nothing:
                self._raise_first_refusal([o for o, _ in reply], lambda i: refusal(*reply[i]))
            items = []
            for user, (outcome, count) in zip(ids, reply, strict=True):
                verdict, why = self._judge("users", outcome, partial(refusal, count=count))
                items.append(Item(user, verdict, why))
            return BatchResult(app, tuple(items))

        return self._guarded(run(), lambda: _all_added(app, ids), "register_users")

    def delete_users(self, app: str, users: Iterable[str] | str) -> Op[DeleteResult]:
        """Unregister accounts, releasing their friendships (both sides) and memberships."""
        keys = self._keys(app)
        ids = self.check_users(users, "users")

        def run() -> Op[DeleteResult]:
            script_keys = (
                keys.users,
                keys.friends,
                keys.friended_by,
                keys.members,
                keys.joined,
                keys.joined_free,
            )
            reply = yield ScriptCall("delete_users", script_keys, ids)
            return DeleteResult(
                app,
                tuple(
                    DeletedUser(user, bool(registered), friendships, memberships)
                    for user, (registered, friendships, memberships) in zip(
                        ids, _pairs(reply, 3), strict=True
                    )
                ),
            )

        return self._guarded(
            run(),
            lambda: DeleteResult(app, tuple(DeletedUser(u, False, 0, 0) for u in ids), True),
            "delete_users",
        )

    # -- friends ---------------------------------------------------------------------------------

    def add_friends(
        self,
        app: str,
        user: str,
        peers: Iterable[str] | str,
        both_ways: bool | str = True,
        *,
        all_or_nothing: bool = False,
    ) -> Op[BatchResult]:
        """Add peers to ``user``'s list (and ``user`` to theirs when ``both_ways``).

        Per peer: added, already, refused 30010 (the user's list is full) or 30014 (the peer's,
        both-way only). A both-way add over an existing single-way relation completes it.
        ``all_or_nothing``: if any peer would be refused, add none and raise :class:`Refused`.
        """
        keys = self._keys(app)
        user = self.check_user(user)
        ids = self.check_users(peers, "peers")
        both_ways = _switch(both_ways, "both_ways")
        if user in ids:
            raise InvalidRequest("peers", f"a user cannot befriend themselves: {user!r}")

        def run() -> Op[BatchResult]:
            limits = yield from self._limits(app)
            self._require_active(app, limits)
            mine = limits.for_user(user, "friends")
            theirs = {peer: limits.for_user(peer, "friends") for peer in ids}
            args: list[str | int] = [
                user,
                int(both_ways),
                _cap(mine),
                self._shadow_flag("friends"),
                int(all_or_nothing),
            ]
            for peer in ids:
                args += (peer, _cap(theirs[peer]))
            script_keys = (keys.friends, keys.friended_by)
            reply = _pairs((yield ScriptCall("add_friends", script_keys, tuple(args))), 4)

            def refusal(code: int, peer: str, count: int) -> Refusal:
                if code == 30014:
                    return self._refusal(limits, code, "friends", "user", peer, count, theirs[peer])
                return self._refusal(limits, code, "friends", "user", user, count, mine)

            if all_or_nothing:
                self._raise_first_refusal(
                    [o for o, *_ in reply], lambda i: refusal(reply[i][0], ids[i], reply[i][2])
                )
            items = []
            for peer, (outcome, sides, count, peer_count) in zip(ids, reply, strict=True):
                verdict, why = self._judge(
                    "friends", outcome, partial(refusal, peer=peer, count=count)
                )
                if peer_count >= 0:  # the peer's list was over its shadow limit as well
                    self._shadowed(refusal(30014, peer, peer_count))
                items.append(FriendItem(peer, verdict, why, bool(sides & 1), bool(sides & 2)))
            return BatchResult(app, tuple(items))

        return self._guarded(run(), lambda: _all_added(app, ids), "add_friends")

    def remove_friends(
        self, app: str, user: str, peers: Iterable[str] | str, both_ways: bool | str = True
    ) -> Op[BatchResult]:
        """Remove peers from ``user``'s list (and ``user`` from theirs when ``both_ways``)."""
        user = self.check_user(user)
        ids = self.check_users(peers, "peers")
        both_ways = _switch(both_ways, "both_ways")
        edges = [(user, peer) for peer in ids]
        if both_ways:
            edges += [(peer, user) for peer in ids]

        def run() -> Op[BatchResult]:
            removed = yield from self._remove_edges(app, edges)
            items = []
            for peer in ids:
                gone = removed[(user, peer)] or (both_ways and removed[(peer, user)])
                items.append(Item(peer, Outcome.REMOVED if gone else Outcome.ABSENT))
            return BatchResult(app, tuple(items))

        return self._guarded(run(), lambda: _all_absent(app, ids), "remove_friends")

    def _remove_edges(
        self, app: str, edges: Sequence[tuple[str, str]]
    ) -> Op[dict[tuple[str, str], bool]]:
        keys = self._keys(app)
        args = tuple(part for edge in edges for part in edge)
        reply = yield ScriptCall("remove_friend_edges", (keys.friends, keys.friended_by), args)
        return {edge: bool(done) for edge, done in zip(edges, reply, strict=True)}

    # -- groups ------------------------------------------------------------------------------------

    def create_group(
        self,
        app: str,
        group: str,
        type: str,
        owner: str,
        members: Iterable[str] = (),
    ) -> Op[GroupCreated]:
        """Create a group with its owner (a member) and initial members, all or nothing.

        Raises :class:`Refused` with 10036 (AV chat rooms), 10038 (too many initial members)
        or 10037 (the owner or a member is at groups_per_user); :class:`GroupExists`.
        """
        keys = self._keys(app)
        group = self.check_group(group)
        group_type = self.catalog.group_type(type)
        spec = self.catalog.group_types[group_type]
        owner = self.check_user(owner, "owner")
        people = tuple(dict.fromkeys((owner, *self.check_users(members, "members"))))

        def run() -> Op[GroupCreated]:
            limits = yield from self._limits(app)
            self._require_active(app, limits)
            group_limit = limits.for_group(group, group_type)
            rooms_limit = limits.app["av_chatrooms"]
            per_user = {person: limits.for_user(person, "groups_per_user") for person in people}
            args: list[str | int] = [
                group,
                group_type,
                int(spec.counts_toward_groups_per_user),
                int(spec.av_chatroom),
                _cap(group_limit),
                _cap(rooms_limit),
                self._shadow_flag("group_members", "av_chatrooms", "groups_per_user"),
            ]
            script_keys, meter_args = self._group_count_change(keys)
            args += meter_args
            for person in people:
                args += (person, _cap(per_user[person]))
            reply = yield ScriptCall("create_group", script_keys, tuple(args))

            def refusal(code: int, subject: str, count: int) -> Refusal:
                if code == 10036:
                    return self._refusal(
                        limits, code, "av_chatrooms", "app", app, count, rooms_limit
                    )
                if code == 10038:
                    return self._refusal(
                        limits,
                        code,
                        "group_members",
                        "group",
                        group,
                        count,
                        group_limit,
                        group_type,
                    )
                return self._refusal(
                    limits, code, "groups_per_user", "user", subject, count, per_user[subject]
                )

            status, subject, count = reply[0], reply[1], reply[2]
            if status == 10021:
                raise GroupExists(app, group)
            if status:
                why = refusal(status, subject, count)
                also = tuple(refusal(*triple) for triple in _pairs(reply[3:], 3))
                self.stats.decisions[(why.limit, "refused")] += 1
                raise Refused(why, also=also)
            shadowed = tuple(refusal(*triple) for triple in _pairs(reply[3:], 3))
            for waived in shadowed:
                self._shadowed(waived)
            self.stats.decisions[("group_members", "allowed")] += 1
            return GroupCreated(app, group, group_type, count, shadowed)

        return self._guarded(
            run(),
            lambda: GroupCreated(app, group, group_type, len(people), degraded=True),
            "create_group",
        )

    def add_members(
        self, app: str, group: str, users: Iterable[str] | str, *, all_or_nothing: bool = False
    ) -> Op[MembersResult]:
        """Add users to a group. Per user: added, already, or refused 10037 (their own
        groups_per_user); if the eligible ones do not all fit, :class:`Refused` 10014 and
        nothing changes. ``all_or_nothing``: a 10037 also refuses the whole call."""
        keys = self._keys(app)
        group = self.check_group(group)
        ids = self.check_users(users, "users")

        def run() -> Op[MembersResult]:
            resolution = yield from self._resolution(app)
            limits = resolution.limits
            self._require_active(app, limits)
            override = limits.group_overrides.get(group)
            per_user = {user: limits.for_user(user, "groups_per_user") for user in ids}
            args: list[str | int] = [
                group,
                "" if override is None else (-1 if override.value is None else override.value),
                self._shadow_flag("group_members", "groups_per_user") + str(int(all_or_nothing)),
                resolution.member_types,
            ]
            for user in ids:
                args += (user, _cap(per_user[user]))
            script_keys = (keys.groups, keys.members, keys.joined, keys.joined_free)
            reply = yield ScriptCall("add_members", script_keys, tuple(args))
            status, size, group_type = reply[0], reply[1], reply[2]
            if status == 10010:
                raise GroupNotFound(app, group)
            group_limit = limits.for_group(group, group_type)
            shadowed = None
            if status in (10014, -10014):  # the refusal's lift is looked up only when needed
                whole = self._refusal(
                    limits, 10014, "group_members", "group", group, size, group_limit, group_type
                )
                if status == 10014:
                    self.stats.decisions[("group_members", "refused")] += 1
                    raise Refused(whole)
                self._shadowed(whole)
                shadowed = whole
            decided = _pairs(reply[3:], 2)

            def refusal(code: int, user: str, count: int) -> Refusal:
                return self._refusal(
                    limits, code, "groups_per_user", "user", user, count, per_user[user]
                )

            if status == 10037:
                self._raise_first_refusal(
                    [o for o, _ in decided], lambda i: refusal(decided[i][0], ids[i], decided[i][1])
                )
            items = []
            for user, (outcome, count) in zip(ids, decided, strict=True):
                verdict, why = self._judge(
                    "groups_per_user", outcome, partial(refusal, user=user, count=count)
                )
                items.append(Item(user, verdict, why))
            return MembersResult(app, tuple(items), group=group, size=size, shadowed=shadowed)

        return self._guarded(
            run(),
            lambda: MembersResult(
                app, _all_added(app, ids).items, degraded=True, group=group, size=0
            ),
            "add_members",
        )

    def remove_members(self, app: str, group: str, users: Iterable[str] | str) -> Op[BatchResult]:
        """Remove users from a group, releasing their groups_per_user count."""
        keys = self._keys(app)
        group = self.check_group(group)
        ids = self.check_users(users, "users")

        def run() -> Op[BatchResult]:
            script_keys = (keys.groups, keys.members, keys.joined, keys.joined_free)
            reply = yield ScriptCall("remove_members", script_keys, (group, *ids))
            if not reply[0]:
                raise GroupNotFound(app, group)
            items = tuple(
                Item(user, Outcome.REMOVED if done else Outcome.ABSENT)
                for user, done in zip(ids, reply[1:], strict=True)
            )
            return BatchResult(app, items)

        return self._guarded(run(), lambda: _all_absent(app, ids), "remove_members")

    def destroy_group(self, app: str, group: str) -> Op[GroupDestroyed]:
        """Delete a group, releasing every member's count and its AV chat room slot."""
        keys = self._keys(app)
        group = self.check_group(group)

        def run() -> Op[GroupDestroyed]:
            script_keys, meter_args = self._group_count_change(keys)
            released = yield ScriptCall("destroy_group", script_keys, (group, *meter_args))
            return GroupDestroyed(app, group, released >= 0, max(released, 0))

        return self._guarded(
            run(), lambda: GroupDestroyed(app, group, False, 0, degraded=True), "destroy_group"
        )

    def _group_count_change(self, keys: AppKeys) -> tuple[tuple[str, ...], tuple[str, str, int]]:
        """KEYS and the metering ARGV of a script that creates or destroys a group."""
        meter, meter_args = self.meter_args(keys)
        script_keys = (
            keys.groups,
            keys.members,
            keys.joined,
            keys.joined_free,
            keys.av_rooms,
            meter,
        )
        return script_keys, meter_args

    def meter_args(self, keys: AppKeys) -> tuple[str, tuple[str, str, int]]:
        """This month's metering hash, and the script arguments that keep the month's peak of
        live groups: today, the month's first day, the hash's retention in seconds."""
        today = local_date(self.clock.now(), self.tz)
        month = Month.parse(today)
        return keys.meter(str(month)), (
            today.isoformat(),
            month.first_day.isoformat(),
            self._retention(month),
        )

    def _retention(self, month: Month) -> int:
        """Seconds from now until a month's metering hash may go: the retention after its end."""
        return _seconds_left(self._kept_until(month), self.clock.now())

    def _kept_until(self, month: Month) -> datetime:
        return month.ends_at(self.tz) + timedelta(days=self.settings.metering_retention_days)

    def _billing_day(self, day: date) -> _BillingDay:
        """What metering needs about ``day``, worked out on its first login (a handful of days
        are live at once; the cache is emptied when it grows past that)."""
        found = self._days.get(day)
        if found is None:
            month = Month.parse(day)
            closes = day_end(day, self.tz) + timedelta(seconds=self.settings.late_seconds)
            found = _BillingDay(day, day.isoformat(), str(month), closes, self._kept_until(month))
            if len(self._days) >= BILLING_DAYS_KEPT:
                self._days.clear()
            self._days[day] = found
        return found

    # -- reservations ------------------------------------------------------------------------------

    def reserve(self, app: str, action: str, values: Mapping[str, Any]) -> Op[Reservation]:
        """Make an addition ahead of the caller's work: all of it, or none and :class:`Refused`.

        ``values`` holds the action's parameters (:data:`ACTION_PARAMETERS`). The decision and
        the write are one script (all or nothing), so a refused reservation never held anything.
        """
        if not isinstance(action, str) or action not in ACTION_PARAMETERS:
            known = ", ".join(ACTION_PARAMETERS)
            raise InvalidRequest("action", f"unknown action {action!r} (known: {known})")
        if not isinstance(values, Mapping):
            raise InvalidRequest("values", "must be a mapping of the action's parameters")
        params: dict[str, Any] = {}
        for name in ACTION_PARAMETERS[action]:
            if name in values:
                params[name] = values[name]
            elif name in _OPTIONAL_PARAMETERS:
                params[name] = _OPTIONAL_PARAMETERS[name]
            else:
                raise InvalidRequest(name, f"{action} needs {name!r}")
        requester = None
        step: Op[BatchResult] | Op[MembersResult] | Op[GroupCreated]
        if action == "register_users":
            step = self.register_users(app, params["users"], all_or_nothing=True)
        elif action == "add_friends":
            requester = self.check_user(params["user"])
            step = self.add_friends(
                app, requester, params["peers"], params["both_ways"], all_or_nothing=True
            )
        elif action == "add_members":
            step = self.add_members(app, params["group"], params["users"], all_or_nothing=True)
        else:
            step = self.create_group(
                app, params["group"], params["type"], params["owner"], params["members"]
            )

        def run() -> Op[Reservation]:
            result = yield from step
            return Reservation(action, app, result, requester)

        return run()

    def release(self, reservation: Reservation) -> Op[None]:
        """Undo exactly what a reservation added (nothing, if it was degraded): accounts are
        unregistered without touching relations, friend-list entries and memberships removed."""
        result, app = reservation.result, reservation.app
        if result.degraded:
            return
        if isinstance(result, GroupCreated):
            yield from self.destroy_group(app, result.group)
        elif isinstance(result, MembersResult):
            if result.added:
                yield from self.remove_members(app, result.group, result.added)
        elif reservation.requester is not None:
            user = reservation.requester
            edges = []
            for item in result.items:
                if isinstance(item, FriendItem) and item.outcome is Outcome.ADDED:
                    if item.requester_side:
                        edges.append((user, item.id))
                    if item.peer_side:
                        edges.append((item.id, user))
            if edges:
                yield from self._remove_edges(app, edges)
        elif result.added:
            users_key = self._keys(app).users
            yield ScriptCall("unregister_users", (users_key,), result.added)

    # -- plan changes ------------------------------------------------------------------------------

    def _write(
        self,
        app: str,
        field: str,
        value: str | None,
        change: tuple[str, str],
        expected: str | None = None,
        ledger: LedgerEntry | None = None,
    ) -> Op[bool]:
        """Set (or, with ``value`` None, delete) one plan field and log it in the audit list
        (and ``ledger`` in the purchase ledger); with ``expected``, only if the field still
        holds it ("" = absent). ``change`` is the audit's (action, actor). Forgets this
        process's copy of the plan."""
        action, actor = change
        compare = ("any", "") if expected is None else ("cas", expected)
        written = ("del", "") if value is None else ("set", value)
        keys = self._keys(app)
        entry = json.dumps(
            {"at": self.clock.now().isoformat(), "actor": actor, "action": action, "field": field}
        )[:-1]
        bought = "" if ledger is None else ledger_entry_value(ledger)
        today = local_date(self.clock.now(), self.tz).isoformat()
        args = (field, *compare, *written, entry, self.settings.audit_entries, bought, today)
        done = yield ScriptCall("plan_write", (keys.plan, keys.audit, keys.ledger), args)
        self._plans.pop(app, None)
        if done:
            self.stats.admin_changes[action] += 1
        return bool(done)

    def set_edition(
        self,
        app: str,
        edition: str,
        purchased_on: date | None = None,
        months: int = 1,
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> Op[PlanState]:
        """Put an app on an edition; a paid one for ``months`` periods from ``purchased_on``."""
        spec = self.catalog.edition(edition)
        _check_months(months)
        if purchased_on is not None:
            _check_date(purchased_on, "purchased_on")
        if spec.paid and purchased_on is None:
            raise InvalidRequest("purchased_on", f"edition {edition!r} is paid: give its date")
        if not spec.paid and purchased_on is not None:
            raise InvalidRequest("purchased_on", f"edition {edition!r} is free: it has no date")
        periods = () if purchased_on is None else _periods(purchased_on, months, "purchased_on")
        purchases = () if purchased_on is None else (Purchase(purchased_on, months),)
        self._keys(app)

        def run() -> Op[PlanState]:
            value = edition_field_value(edition, periods, purchases)
            today = local_date(self.clock.now(), self.tz)
            ledger = LedgerEntry("edition", today, edition, periods, next(iter(purchases), None))
            yield from self._write(app, EDITION_FIELD, value, ("set_edition", actor), None, ledger)
            return (yield from self._plan(app, fresh=True))

        return run()

    def renew(self, app: str, months: int = 1, *, actor: str = DEFAULT_ACTOR) -> Op[PlanState]:
        """Extend a paid edition: from the day after its end while active or in grace, else
        from today."""
        _check_months(months)
        plan_key = self._keys(app).plan

        def run() -> Op[PlanState]:
            for _ in range(_CAS_ATTEMPTS):
                (raw,) = yield Pipeline((("HGET", plan_key, EDITION_FIELD),))
                plan = decode({EDITION_FIELD: raw} if raw else {}, self.settings.default_edition)
                if not self.catalog.edition(plan.edition).paid:
                    raise PlanConflict(
                        f"app {app!r} is on free edition {plan.edition!r}: "
                        "set a paid edition instead of renewing"
                    )
                now = self.clock.now()
                today = local_date(now, self.tz)
                state = edition_state(self.catalog, plan, now, self.tz)
                last_day = max((p.ends_on for p in plan.periods), default=None)
                if state.status is not Status.SUSPENDED and state.period is not None:
                    start = state.period.ends_on + timedelta(days=1)
                elif last_day is not None and last_day >= today:  # bought ahead, not begun
                    start = last_day + timedelta(days=1)
                else:
                    start = today
                added = _periods(start, months, "months")
                bought = Purchase(today, months)
                value = edition_field_value(
                    plan.edition, plan.periods + added, (*plan.purchases, bought)
                )
                ledger = LedgerEntry("renewal", today, plan.edition, added, bought)
                change = ("renew", actor)
                if (yield from self._write(app, EDITION_FIELD, value, change, raw or "", ledger)):
                    return (yield from self._plan(app, fresh=True))
            raise PlanConflict(f"app {app!r}: the edition kept changing during the renewal")

        return run()

    def add_expansion(
        self,
        app: str,
        kind: str,
        purchased_on: date,
        months: int = 1,
        days: int | None = None,
        *,
        actor: str = DEFAULT_ACTOR,
    ) -> Op[ExpansionGrant]:
        """Record an expansion bought on ``purchased_on`` for ``months`` periods."""
        spec = self.catalog.expansion(kind)
        _check_months(months)
        _check_date(purchased_on, "purchased_on")
        if spec.raises.chosen_by_buyer:
            low, high = spec.raises.min_value, spec.raises.max_value
            if (
                not isinstance(days, int)
                or (low is not None and days < low)
                or (high is not None and days > high)
            ):
                raise InvalidRequest("days", f"{kind} needs days between {low} and {high}")
        elif days is not None:
            raise InvalidRequest("days", f"{kind} takes no days")
        grant = ExpansionGrant(
            secrets.token_hex(8), kind, _periods(purchased_on, months, "purchased_on"), days
        )

        def run() -> Op[ExpansionGrant]:
            plan = yield from self._plan(app, fresh=True)
            if plan.edition not in spec.editions:
                needed = " or ".join(spec.editions)
                raise PlanConflict(
                    f"expansion {kind!r} needs edition {needed}; app {app!r} is on {plan.edition!r}"
                )
            field = expansion_field(grant.id)
            value = expansion_field_value(grant)
            today = local_date(self.clock.now(), self.tz)
            ledger = LedgerEntry("expansion", today, periods=grant.periods, grant=grant)
            yield from self._write(app, field, value, ("add_expansion", actor), "", ledger)
            return grant

        return run()

    def remove_expansion(self, app: str, grant_id: str, *, actor: str = DEFAULT_ACTOR) -> Op[bool]:
        """Stop an expansion from today; False when there was none with that id. Its purchase
        stays on the bill of the month it was bought in (the ledger keeps it)."""
        self._keys(app)
        if not isinstance(grant_id, str) or not 0 < len(grant_id) <= 64:
            raise InvalidRequest("id", f"not an expansion id: {grant_id!r}")
        ledger = LedgerEntry("removal", local_date(self.clock.now(), self.tz), removed=grant_id)
        change = ("remove_expansion", actor)
        return self._write(app, expansion_field(grant_id), None, change, None, ledger)

    def _override_field(self, limit: str, user: str | None, group: str | None) -> str:
        if limit not in LIMIT_NAMES:
            known = ", ".join(LIMIT_NAMES)
            raise InvalidRequest("limit", f"unknown limit {limit!r} (known: {known})")
        if user is not None and group is not None:
            raise InvalidRequest("user", "an override is for a user or a group, not both")
        if user is not None:
            if limit not in USER_OVERRIDE_LIMITS:
                raise InvalidRequest("limit", f"per-user overrides are for {USER_OVERRIDE_LIMITS}")
            return override_field(limit, user=self.check_user(user))
        if group is not None:
            if limit not in GROUP_OVERRIDE_LIMITS:
                raise InvalidRequest("limit", "per-group overrides are for group_members")
            return override_field(limit, group=self.check_group(group))
        return override_field(limit)

    def set_override(
        self,
        app: str,
        limit: str,
        value: int | None,
        expires_at: datetime | None = None,
        *,
        user: str | None = None,
        group: str | None = None,
        actor: str = DEFAULT_ACTOR,
    ) -> Op[Override]:
        """Set a custom limit for the app, one user or one group (None = unlimited)."""
        field = self._override_field(limit, user, group)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise InvalidRequest("value", "must be a whole number >= 0, or None for unlimited")
        if expires_at is not None and (
            not isinstance(expires_at, datetime) or expires_at.tzinfo is None
        ):
            raise InvalidRequest("expires_at", "must be a timezone-aware instant")
        self._keys(app)
        override = Override(value, expires_at)

        def run() -> Op[Override]:
            value = override_field_value(override)
            yield from self._write(app, field, value, ("set_override", actor))
            return override

        return run()

    def clear_override(
        self,
        app: str,
        limit: str,
        *,
        user: str | None = None,
        group: str | None = None,
        actor: str = DEFAULT_ACTOR,
    ) -> Op[bool]:
        """Remove a custom limit; False when there was none."""
        field = self._override_field(limit, user, group)
        self._keys(app)
        return self._write(app, field, None, ("clear_override", actor))

    # -- metering ----------------------------------------------------------------------------------

    def _instant(self, at: datetime | None, field: str) -> datetime:
        now = self.clock.now()
        if at is None:
            return now
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise InvalidRequest(field, "must be a timezone-aware instant")
        if at > now + FUTURE_TOLERANCE:
            raise InvalidRequest(field, f"{at.isoformat()} is in the future")
        return at

    def _closes_in(self, day: date) -> int:
        """Whole seconds (rounded up) until a billing day stops taking metering: its end plus
        ``late_seconds``; <= 0 once it has closed."""
        return math.ceil((self._billing_day(day).closes - self.clock.now()).total_seconds())

    def record_login(self, app: str, user: str, at: datetime | None = None) -> Op[LoginRecorded]:
        """Count ``user`` as active on the billing day of ``at`` (default now), once per day.

        A login for a day that closed more than ``late_seconds`` ago is not counted.
        """
        keys = self._keys(app)
        user = self.check_user(user)
        billing = self._billing_day(local_date(self._instant(at, "at"), self.tz))
        day = billing.day

        def run() -> Op[LoginRecorded]:
            now = self.clock.now()
            closes_in = math.ceil((billing.closes - now).total_seconds())
            args = (user, billing.text, closes_in, _seconds_left(billing.kept_until, now))
            script_keys = (keys.dau(day), keys.meter(billing.month))
            outcome, count = yield ScriptCall("record_login", script_keys, args)
            if outcome < 0:
                log.warning(
                    "login of %r on %s arrived after the day closed: not counted", user, day
                )
            return LoginRecorded(app, user, day, outcome == 1, count, late=outcome < 0)

        return self._guarded(
            run(), lambda: LoginRecorded(app, user, day, False, 0, degraded=True), "record_login"
        )

    def record_bandwidth(
        self, app: str, mbps: Decimal | int | float | str, at: datetime | None = None
    ) -> Op[Decimal]:
        """Record an AV bandwidth measurement; returns the day's peak so far (Mbps). A day
        closed more than ``late_seconds`` ago is final: :class:`InvalidRequest`."""
        keys = self._keys(app)
        try:
            value = Decimal(str(mbps))
        except ArithmeticError:
            raise InvalidRequest("mbps", f"must be a number, not {mbps!r}") from None
        if isinstance(mbps, bool) or not value.is_finite() or value < 0:
            raise InvalidRequest("mbps", f"must be a finite number >= 0, not {mbps!r}")
        day = local_date(self._instant(at, "at"), self.tz)
        month = Month.parse(day)
        if self._closes_in(day) <= 0:
            raise InvalidRequest("at", f"{day} is closed: its bandwidth peak is final")

        def run() -> Op[Decimal]:
            args = (day.isoformat(), str(value), self._retention(month))
            _, peak = yield ScriptCall("record_bandwidth", (keys.meter(str(month)),), args)
            return Decimal(peak)

        return self._guarded(run(), lambda: value, "record_bandwidth")

    def monthly_usage(self, app: str, month: Month | str) -> Op[MonthlyUsage]:
        """What the bill of ``month`` measures, as recorded so far."""
        keys = self._keys(app)
        month = Month.parse(month)
        current = Month.of(self.clock.now(), self.tz)
        # Later months can hold the answer for as long as their metering is kept.
        look_ahead = math.ceil(self.settings.metering_retention_days / 28) + 1
        later = [month.shift(n) for n in range(1, look_ahead + 1)]
        later = [m for m in later if m <= current]

        def run() -> Op[MonthlyUsage]:
            commands: list[tuple[str | int, ...]] = [("HGETALL", keys.meter(str(month)))]
            commands += [("HGET", keys.meter(str(m)), "groups_start") for m in later]
            commands.append(("HLEN", keys.groups))
            fields, *starts, live = yield Pipeline(tuple(commands))
            dau: dict[date, int] = {}
            bandwidth: dict[date, Decimal] = {}
            for name, raw in fields.items():
                kind, _, day = name.partition(":")
                if kind == "dau":
                    dau[date.fromisoformat(day)] = int(raw)
                elif kind == "bandwidth":
                    bandwidth[date.fromisoformat(day)] = Decimal(raw)
            peak_groups_day = _day(fields.get("peak_groups_day"))
            if "peak_groups" in fields:
                peak_groups = int(fields["peak_groups"])
            elif month > current:
                peak_groups = 0
            else:
                # No group was created or destroyed that month: the count held all month, at
                # what the next month with a change started from (or, with none since, now).
                peak_groups = next((int(s) for s in starts if s is not None), live)
                peak_groups_day = month.first_day if peak_groups else None
            return MonthlyUsage(
                app,
                month,
                dict(sorted(dau.items())),
                int(fields.get("peak_dau", 0)),
                _day(fields.get("peak_dau_day")),
                peak_groups,
                peak_groups_day,
                dict(sorted(bandwidth.items())),
            )

        return run()

    def bill(self, app: str, month: Month | str) -> Op[Bill]:
        """The bill of ``month`` from the catalog's prices: what was bought that month and
        what the month measured (see :func:`limiter.billing.compute_bill`)."""
        usage_op = self.monthly_usage(app, month)

        keys = self._keys(app)

        def run() -> Op[Bill]:
            usage = yield from usage_op
            plan = yield from self._plan(app, fresh=True)
            (raw,) = yield Pipeline((("LRANGE", keys.ledger, 0, -1),))
            history = BillingHistory.replay(decode_ledger(raw), plan)
            return compute_bill(self.catalog, history, usage)

        return run()

    def history_cutoff(self, app: str, now: datetime | None = None) -> Op[datetime | None]:
        """The oldest instant the app's message history keeps (``history_days`` back from
        ``now``); None when its history is unlimited."""
        self._keys(app)
        at = self._instant(now, "now")

        def run() -> Op[datetime | None]:
            plan = yield from self._plan(app)
            days = resolve(self.catalog, plan, at, self.tz).app["history_days"].value
            return None if days is None else at - timedelta(days=days)

        return run()

    def rebuild(self, app: str) -> Rebuild:
        """A reconcile of ``app`` from its source of truth (see :mod:`limiter.rebuild`)."""
        return Rebuild(self, app)

    def clamp_history(
        self, app: str, start: datetime, *, refuse: bool = False, field: str = "start"
    ) -> Op[datetime]:
        """The start of a history query kept inside the app's retention: ``start``, or the
        cutoff when ``start`` reaches further back (``refuse``: raise
        :class:`OutsideRetention` naming ``field`` instead)."""
        if not isinstance(start, datetime) or start.tzinfo is None:
            raise InvalidRequest(field, "must be a timezone-aware instant")
        cutoff_op = self.history_cutoff(app)

        def run() -> Op[datetime]:
            cutoff = yield from cutoff_op
            if cutoff is None or start >= cutoff:
                return start
            if refuse:
                raise OutsideRetention(field, cutoff)
            return cutoff

        return run()

    # -- operator reads ------------------------------------------------------------------------

    def audit(self, app: str, limit: int = 50) -> Op[tuple[AuditEntry, ...]]:
        """The app's latest plan changes, newest first (at most ``audit_entries`` are kept)."""
        keys = self._keys(app)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidRequest("limit", "must be a whole number >= 1")

        def run() -> Op[tuple[AuditEntry, ...]]:
            (raw,) = yield Pipeline((("LRANGE", keys.audit, 0, limit - 1),))
            entries = []
            for text in raw:
                entry = json.loads(text)
                entries.append(
                    AuditEntry(
                        datetime.fromisoformat(entry["at"]),
                        entry["actor"],
                        entry["action"],
                        entry["field"],
                        entry["before"],
                        entry["after"],
                    )
                )
            return tuple(entries)

        return run()

    def over_limit(self, app: str) -> Op[tuple[OverLimit, ...]]:
        """Every account count, user and group above its effective limit now (lower limits
        never evict). Reads the relation sets in chunks: memory stays flat, the cost grows
        with the app."""
        keys = self._keys(app)

        def run() -> Op[tuple[OverLimit, ...]]:
            limits = yield from self._limits(app)
            found: list[OverLimit] = []

            def check(scope: Scope, subject: str, limit: str, count: int, cap: Limit) -> None:
                if cap.value is not None and count > cap.value:
                    found.append(OverLimit(scope, subject, limit, count, cap.value))

            users, rooms = yield Pipeline((("SCARD", keys.users), ("SCARD", keys.av_rooms)))
            check("app", app, "users", users, limits.app["users"])
            check("app", app, "av_chatrooms", rooms, limits.app["av_chatrooms"])
            for key, limit in ((keys.friends, "friends"), (keys.joined, "groups_per_user")):

                def per_user(user: str, count: int, limit: str = limit) -> None:
                    check("user", user, limit, count, limits.for_user(user, limit))

                yield from self._each_subject(key, per_user)
            # A group's limit depends on its type; fetch types only where the count could be over.
            capped = [cap.value for cap in limits.group_members.values() if cap.value is not None]
            lowest = min(capped, default=None)
            candidates: dict[str, int] = {}

            def collect(group: str, count: int) -> None:
                if group in limits.group_overrides or (lowest is not None and count > lowest):
                    candidates[group] = count

            yield from self._each_subject(keys.members, collect)
            names = list(candidates)
            for start in range(0, len(names), SCAN_CHUNK):
                chunk = names[start : start + SCAN_CHUNK]
                (types,) = yield Pipeline((("HMGET", keys.groups, *chunk),))
                for group, group_type in zip(chunk, types, strict=True):
                    if group_type is not None:
                        cap = limits.for_group(group, group_type)
                        check("group", group, "group_members", candidates[group], cap)
            return tuple(found)

        return run()

    def _each_subject(self, key: str, visit: Callable[[str, int], None]) -> Op[None]:
        """Call ``visit(subject, count)`` for every subject of a relation set, in order,
        reading it ``SCAN_CHUNK`` entries per round trip."""
        low, subject, count = "-", None, 0
        while True:
            (entries,) = yield Pipeline((("ZRANGEBYLEX", key, low, "+", "LIMIT", 0, SCAN_CHUNK),))
            for entry in entries:
                head = entry.partition("\0")[0]
                if head != subject:
                    if subject is not None:
                        visit(subject, count)
                    subject, count = head, 0
                count += 1
            if len(entries) < SCAN_CHUNK:
                break
            low = "(" + entries[-1]
        if subject is not None:
            visit(subject, count)

    # -- reads -------------------------------------------------------------------------------------

    def plan(self, app: str) -> Op[PlanState]:
        self._keys(app)
        return self._plan(app, fresh=True)

    def limits(self, app: str) -> Op[EffectiveLimits]:
        self._keys(app)
        return self._limits(app)

    def usage(self, app: str) -> Op[Usage]:
        keys = self._keys(app)

        def run() -> Op[Usage]:
            users, groups, rooms = yield Pipeline(
                (("SCARD", keys.users), ("HLEN", keys.groups), ("SCARD", keys.av_rooms))
            )
            return Usage(users, groups, rooms)

        return run()

    def user_usage(self, app: str, user: str) -> Op[UserUsage]:
        keys = self._keys(app)
        user = self.check_user(user)
        low, high = f"[{user}\0", f"({user}\1"

        def run() -> Op[UserUsage]:
            registered, friends, groups = yield Pipeline(
                (
                    ("SISMEMBER", keys.users, user),
                    ("ZLEXCOUNT", keys.friends, low, high),
                    ("ZLEXCOUNT", keys.joined, low, high),
                )
            )
            return UserUsage(user, bool(registered), friends, groups)

        return run()

    def group_usage(self, app: str, group: str) -> Op[GroupUsage | None]:
        keys = self._keys(app)
        group = self.check_group(group)

        def run() -> Op[GroupUsage | None]:
            group_type, members = yield Pipeline(
                (
                    ("HGET", keys.groups, group),
                    ("ZLEXCOUNT", keys.members, f"[{group}\0", f"({group}\1"),
                )
            )
            return None if group_type is None else GroupUsage(group, group_type, members)

        return run()


def _open_outage(op: Op[T], fallback: Callable[[], T], what: str) -> Op[T]:
    try:
        return (yield from op)
    except StoreUnavailable:
        log.warning("Redis unavailable: %s allowed undecided (outage policy open)", what)
        return fallback()


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _switch(value: bool | str, field: str) -> bool:
    """A yes/no input: a bool, or "true"/"false"/"1"/"0" as a query string carries it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise InvalidRequest(field, f"must be true or false, not {value!r}")


def _periods(start: date, months: int, field: str) -> tuple[Period, ...]:
    try:
        return consecutive_periods(start, months)
    except (ValueError, OverflowError):  # past 9999-12-31
        raise InvalidRequest(field, "the periods would end after 9999-12-31") from None


def _check_months(months: int) -> None:
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise InvalidRequest("months", f"must be a whole number from 1 to {MAX_MONTHS}")


def _check_date(value: object, field: str) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidRequest(field, f"must be a calendar date, not {value!r}")


def _all_added(app: str, ids: tuple[str, ...]) -> BatchResult:
    return BatchResult(app, tuple(Item(i, Outcome.ADDED) for i in ids), degraded=True)


def _all_absent(app: str, ids: tuple[str, ...]) -> BatchResult:
    return BatchResult(app, tuple(Item(i, Outcome.ABSENT) for i in ids), degraded=True)
