"""A second implementation of the plan rules, written from the spec, for ``test_model.py``.

It shares no logic with ``limiter.core``, ``limits``, ``periods`` or ``plan``: it reads only the
catalog's numbers, and decides every operation again on plain Python sets, so a state machine
can run the same steps on it and on the engine and compare what both answer.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from limiter.catalog import Catalog
from limiter.clock import Clock

Cap = int | None  # a limit's value; None is unlimited
Days = tuple[date, date]  # a paid span, both ends included
APP_LIMITS = ("users", "friends", "groups_per_user", "av_chatrooms", "history_days")
SUSPENDED = 60020


@dataclass(frozen=True)
class Why:
    """A refusal as the engine reports it: IM code, whom it is about, the count at the
    decision and the limit."""

    code: int
    scope_id: str
    current: int
    maximum: Cap


@dataclass(frozen=True)
class Decided:
    """One item of a batch: added, already, refused (with why), not_registered, removed or
    absent."""

    id: str
    outcome: str
    why: Why | None = None


@dataclass(frozen=True)
class Failure:
    """A whole call that did nothing: refused (``why``, and ``also`` for further full
    members of a group creation), not_registered (``accounts``: every id of the call that is
    not an account), exists, not_found, invalid or conflict."""

    kind: str
    why: Why | None = None
    also: tuple[Why, ...] = ()
    accounts: tuple[str, ...] = ()


class Rejected(Exception):
    """The model's answer when a whole call fails; nothing in the model changed."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure)
        self.failure = failure


@dataclass(frozen=True)
class Grant:
    kind: str
    days: Days
    chosen: int | None  # history_extension's days


@dataclass(frozen=True)
class Custom:
    """An override: its value, and the instant it stops applying (None: never)."""

    value: Cap
    expires_at: datetime | None

    def applies(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


def one_period(start: date) -> Days:
    """Day T to day T-1 of the next month; the next month's last day when it has no day T."""
    year, month = (start.year, start.month + 1) if start.month < 12 else (start.year + 1, 1)
    length = calendar.monthrange(year, month)[1]
    if start.day > length:
        return start, date(year, month, length)
    return start, date(year, month, start.day) - timedelta(days=1)


def periods(start: date, months: int) -> tuple[Days, ...]:
    """``months`` one-month periods back to back from ``start``."""
    bought = []
    for _ in range(months):
        bought.append(one_period(start))
        start = bought[-1][1] + timedelta(days=1)
    return tuple(bought)


def larger(one: Cap, other: Cap) -> Cap:
    """Of two limits, the one that allows more (unlimited beats any number)."""
    if one is None or other is None:
        return None
    return max(one, other)


def allows(cap: Cap, count: int) -> bool:
    """Whether something holding ``count`` may take one more."""
    return cap is None or count < cap


class Model:
    """One app's plan and relations, decided by the rules of ``plans.md`` and ``contract.md``.

    ``accounts_first`` (the engine's ``require_registered``): a friend add, a group creation
    or a member add names only registered accounts; any other id is not_registered, and
    relates to nothing."""

    def __init__(
        self, catalog: Catalog, app: str, clock: Clock, tz: ZoneInfo, accounts_first: bool = True
    ) -> None:
        self.catalog, self.app, self.clock, self.tz = catalog, app, clock, tz
        self.accounts_first = accounts_first
        self.edition = "trial"  # the default edition of an app nobody has set up
        self.paid: tuple[Days, ...] = ()
        self.grants: dict[str, Grant] = {}
        self.overrides: dict[tuple[str, str, str], Custom] = {}  # (scope, id, limit)
        self.users: set[str] = set()
        self.lists: dict[str, set[str]] = {}  # whose friend list -> who is in it
        self.groups: dict[str, str] = {}  # group -> canonical type
        self.members: dict[str, set[str]] = {}

    # -- time and plan -------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return self.now().astimezone(self.tz).date()

    def midnight(self, day: date) -> datetime:
        """The instant ``day`` begins in the billing timezone."""
        return datetime.combine(day, time(0), tzinfo=self.tz)

    def spans(self) -> list[Days]:
        """The paid periods joined where one follows on from another."""
        joined: list[Days] = []
        for start, end in sorted(self.paid):
            if joined and start <= joined[-1][1] + timedelta(days=1):
                joined[-1] = (joined[-1][0], max(joined[-1][1], end))
            else:
                joined.append((start, end))
        return joined

    def state(self) -> tuple[str, Days | None]:
        """Status and period: a free edition is active; a paid one is active on its paid
        days, in grace for the catalog's grace hours after the last one, then suspended (also
        before its first day)."""
        if not self.catalog.editions[self.edition].paid:
            return "active", None
        begun = [span for span in self.spans() if span[0] <= self.today()]
        if not begun:
            return "suspended", None
        span = begun[-1]
        if self.today() <= span[1]:
            return "active", span
        return ("grace" if self.now() < self.grace_ends(span) else "suspended"), span

    def grace_ends(self, span: Days) -> datetime:
        """The end of the grace after a paid span: its last day's end plus the grace hours
        (elapsed hours, so counted in UTC)."""
        last_day_ends = self.midnight(span[1] + timedelta(days=1)).astimezone(UTC)
        return last_day_ends + timedelta(hours=self.catalog.grace_hours)

    def boundaries(self) -> list[datetime]:
        """Instants ahead at which a limit or the status may change: the next midnight, the
        end of paid days and grace, expansions starting and ending, overrides expiring."""
        moments = [self.midnight(self.today() + timedelta(days=1))]
        for start, end in self.paid:
            moments += [self.midnight(start), self.midnight(end + timedelta(days=1))]
        span = self.state()[1]
        if span is not None:
            moments.append(self.grace_ends(span))
        for grant in self.grants.values():
            moments += [
                self.midnight(grant.days[0]),
                self.midnight(grant.days[1] + timedelta(days=1)),
            ]
        moments += [c.expires_at for c in self.overrides.values() if c.expires_at is not None]
        return sorted({moment for moment in moments if moment > self.now()})

    def custom(self, scope: str, subject: str, limit: str) -> Custom | None:
        found = self.overrides.get((scope, subject, limit))
        return found if found is not None and found.applies(self.now()) else None

    def raised(self, limit: str) -> list[Cap]:
        """What the expansions in effect today raise ``limit`` to."""
        values: list[Cap] = []
        for grant in self.grants.values():
            spec = self.catalog.expansions[grant.kind]
            in_effect = grant.days[0] <= self.today() <= grant.days[1]
            if spec.raises.limit == limit and in_effect and self.edition in spec.editions:
                values.append(grant.chosen if spec.raises.chosen_by_buyer else spec.raises.value)
        return values

    def app_limit(self, limit: str) -> Cap:
        """An app-wide limit: the edition's, raised by expansions, replaced by an override."""
        custom = self.custom("app", "", limit)
        if custom is not None:
            return custom.value
        value: Cap = getattr(self.catalog.editions[self.edition].limits, limit)
        for other in self.raised(limit):
            value = larger(value, other)
        return value

    def type_limit(self, group_type: str) -> Cap:
        """``group_members`` of a type; unlimited types (AV chat rooms) stay unlimited."""
        value: Cap = self.catalog.editions[self.edition].limits.group_members[group_type]
        if value is None:
            return None
        custom = self.custom("app", "", "group_members")
        if custom is not None:
            return custom.value
        for other in self.raised("group_members"):
            value = larger(value, other)
        return value

    def user_limit(self, user: str, limit: str) -> Cap:
        custom = self.custom("user", user, limit)
        return self.app_limit(limit) if custom is None else custom.value

    def group_limit(self, group: str, group_type: str) -> Cap:
        custom = self.custom("group", group, "group_members")
        return self.type_limit(group_type) if custom is None else custom.value

    # -- plan changes ----------------------------------------------------------------------------

    def set_edition(self, edition: str, purchased_on: date | None, months: int) -> tuple[Days, ...]:
        """A new edition replaces the paid days; returns them."""
        self.edition = edition
        self.paid = () if purchased_on is None else periods(purchased_on, months)
        return self.paid

    def renew(self, months: int) -> tuple[Days, ...]:
        """More periods: after the current end while active or in grace; else from today, but
        after a package bought ahead that has not begun (the engine's reading, where
        contract.md says "today": see test_renewing_a_package_not_yet_begun_starts_today)."""
        if not self.catalog.editions[self.edition].paid:
            raise Rejected(Failure("conflict"))
        status, span = self.state()
        last = max((end for _, end in self.paid), default=None)
        if status != "suspended" and span is not None:
            start = span[1] + timedelta(days=1)
        elif last is not None and last >= self.today():
            start = last + timedelta(days=1)
        else:
            start = self.today()
        self.paid += periods(start, months)
        return self.paid

    def add_expansion(
        self, grant_id: str, kind: str, purchased_on: date, months: int, chosen: int | None
    ) -> tuple[Days, ...]:
        """Record an expansion the edition may buy; returns its periods."""
        if self.edition not in self.catalog.expansions[kind].editions:
            raise Rejected(Failure("conflict"))
        bought = periods(purchased_on, months)
        self.grants[grant_id] = Grant(kind, (bought[0][0], bought[-1][1]), chosen)
        return bought

    def remove_expansion(self, grant_id: str) -> bool:
        return self.grants.pop(grant_id, None) is not None

    def set_override(
        self, scope: str, subject: str, limit: str, value: Cap, expires_at: datetime | None
    ) -> Custom:
        custom = self.overrides[(scope, subject, limit)] = Custom(value, expires_at)
        return custom

    def clear_override(self, scope: str, subject: str, limit: str) -> bool:
        return self.overrides.pop((scope, subject, limit), None) is not None

    # -- counts ------------------------------------------------------------------------------------

    def friends_of(self, user: str) -> int:
        return len(self.lists.get(user, ()))

    def counts_toward_groups(self, group: str) -> bool:
        return self.catalog.group_types[self.groups[group]].counts_toward_groups_per_user

    def groups_of(self, user: str) -> int:
        """Memberships counted toward ``groups_per_user`` (AV chat rooms are not)."""
        return sum(
            1
            for g, people in self.members.items()
            if user in people and self.counts_toward_groups(g)
        )

    def av_rooms(self) -> int:
        return sum(1 for t in self.groups.values() if self.catalog.group_types[t].av_chatroom)

    def over_limit(self) -> set[tuple[str, str, str, int, int]]:
        """(scope, id, limit, current, maximum) of everything above its limit now."""
        found: set[tuple[str, str, str, int, int]] = set()

        def check(scope: str, subject: str, limit: str, count: int, cap: Cap) -> None:
            if cap is not None and count > cap:
                found.add((scope, subject, limit, count, cap))

        check("app", self.app, "users", len(self.users), self.app_limit("users"))
        check("app", self.app, "av_chatrooms", self.av_rooms(), self.app_limit("av_chatrooms"))
        people = set(self.lists) | {u for group in self.members.values() for u in group}
        for user in people:
            check("user", user, "friends", self.friends_of(user), self.user_limit(user, "friends"))
            limit = self.user_limit(user, "groups_per_user")
            check("user", user, "groups_per_user", self.groups_of(user), limit)
        for group, group_type in self.groups.items():
            size = len(self.members[group])
            check("group", group, "group_members", size, self.group_limit(group, group_type))
        return found

    # -- operations ------------------------------------------------------------------------------

    def require_active(self) -> None:
        """Additions stop with 60020 once the paid package lapsed or before it starts."""
        if self.state()[0] == "suspended":
            raise Rejected(Failure("refused", Why(SUSPENDED, self.app, 0, None)))

    def stranger(self, user: str) -> bool:
        """Whether ``user`` may not be related: accounts first, and not a registered one."""
        return self.accounts_first and user not in self.users

    def register_users(
        self, users: Iterable[str], all_or_nothing: bool = False
    ) -> tuple[Decided, ...]:
        """In request order, as many as ``users`` allows; later ones refused (70398).
        ``all_or_nothing``: if the new ones do not all fit, none is registered and the call
        is refused, with the count before it."""
        self.require_active()
        users = tuple(dict.fromkeys(users))
        fresh = [user for user in users if user not in self.users]
        cap = self.app_limit("users")
        if all_or_nothing and fresh and not allows(cap, len(self.users) + len(fresh) - 1):
            raise Rejected(Failure("refused", Why(70398, self.app, len(self.users), cap)))
        decided = []
        for user in users:
            cap = self.app_limit("users")
            if user in self.users:
                decided.append(Decided(user, "already"))
            elif allows(cap, len(self.users)):
                self.users.add(user)
                decided.append(Decided(user, "added"))
            else:
                decided.append(Decided(user, "refused", Why(70398, self.app, len(self.users), cap)))
        return tuple(decided)

    def unregister(self, users: Iterable[str]) -> None:
        """Take accounts off the app (a released reservation): their relations stay."""
        self.users.difference_update(users)

    def delete_users(self, users: Iterable[str]) -> tuple[tuple[str, bool, int, int], ...]:
        """Per user: was registered, list entries released on either side, memberships."""
        done = []
        for user in dict.fromkeys(users):
            registered = user in self.users
            self.users.discard(user)
            released = len(self.lists.pop(user, set()))
            for friends in self.lists.values():
                if user in friends:
                    friends.discard(user)
                    released += 1
            memberships = 0
            for people in self.members.values():
                if user in people:
                    people.discard(user)
                    memberships += 1
            done.append((user, registered, released, memberships))
        return tuple(done)

    def add_friends(
        self, user: str, peers: Iterable[str], both_ways: bool, all_or_nothing: bool = False
    ) -> tuple[Decided, ...]:
        """A requester that is not an account: the call fails (not_registered). Per peer:
        not_registered (not an account, even if already a friend), already, refused 30010
        (the user's list is full), 30014 (the peer's, when its side is missing), or added: the
        missing sides, each counted against its own list. ``all_or_nothing``: any peer not an
        account fails the call naming them all, else any refusal refuses it (the first, with
        the counts before the call), and nothing is added."""
        peers = tuple(dict.fromkeys(peers))
        if user in peers:
            raise Rejected(Failure("invalid"))
        self.require_active()
        if self.stranger(user):
            raise Rejected(Failure("not_registered", accounts=(user,)))
        before = len(self.lists.get(user, ()))
        mine = set(self.lists.get(user, ()))  # the requester's list as the decisions go
        decided, sides = [], []
        for peer in peers:
            theirs = self.lists.get(peer, set())  # touched by this peer's add only
            forward, reverse = peer in mine, (not both_ways) or user in theirs
            cap, peer_cap = self.user_limit(user, "friends"), self.user_limit(peer, "friends")
            if self.stranger(peer):
                decided.append(Decided(peer, "not_registered"))
            elif forward and reverse:
                decided.append(Decided(peer, "already"))
            elif not forward and not allows(cap, len(mine)):
                decided.append(Decided(peer, "refused", Why(30010, user, len(mine), cap)))
            elif not reverse and not allows(peer_cap, len(theirs)):
                decided.append(Decided(peer, "refused", Why(30014, peer, len(theirs), peer_cap)))
            else:
                mine.add(peer)
                sides.append((peer, not reverse))
                decided.append(Decided(peer, "added"))
        if all_or_nothing:
            strangers = tuple(d.id for d in decided if d.outcome == "not_registered")
            if strangers:
                raise Rejected(Failure("not_registered", accounts=strangers))
            for item in decided:
                if item.why is not None and item.why.code == 30010:
                    why = Why(30010, user, before, item.why.maximum)
                    raise Rejected(Failure("refused", why))
                if item.why is not None:
                    raise Rejected(Failure("refused", item.why))
        self.lists.setdefault(user, set()).update(peer for peer, _ in sides)
        for peer, reverse in sides:
            if reverse:
                self.lists.setdefault(peer, set()).add(user)
        return tuple(decided)

    def remove_friends(
        self, user: str, peers: Iterable[str], both_ways: bool
    ) -> tuple[Decided, ...]:
        decided = []
        for peer in dict.fromkeys(peers):
            gone = peer in self.lists.get(user, set())
            self.lists.get(user, set()).discard(peer)
            if both_ways:
                gone = user in self.lists.get(peer, set()) or gone
                self.lists.get(peer, set()).discard(user)
            decided.append(Decided(peer, "removed" if gone else "absent"))
        return tuple(decided)

    def canonical(self, group_type: str) -> str:
        for name, spec in self.catalog.group_types.items():
            if group_type == name or group_type in spec.aliases:
                return name
        raise Rejected(Failure("invalid"))

    def create_group(
        self, group: str, group_type: str, owner: str, members: Iterable[str]
    ) -> tuple[str, int]:
        """All or nothing, checked in this order: the id is free (10021), the owner and
        members are accounts (not_registered naming every one that is not), an AV room fits
        under ``av_chatrooms`` (10036), the owner and members fit the group (10038), none of
        them is at ``groups_per_user`` (10037) where the type counts. Returns (type, size)."""
        group_type = self.canonical(group_type)
        spec = self.catalog.group_types[group_type]
        people = tuple(dict.fromkeys((owner, *members)))
        self.require_active()
        if group in self.groups:
            raise Rejected(Failure("exists"))
        strangers = tuple(person for person in people if self.stranger(person))
        if strangers:
            raise Rejected(Failure("not_registered", accounts=strangers))
        rooms, room_cap = self.av_rooms(), self.app_limit("av_chatrooms")
        if spec.av_chatroom and not allows(room_cap, rooms):
            raise Rejected(Failure("refused", Why(10036, self.app, rooms, room_cap)))
        cap = self.group_limit(group, group_type)
        if not allows(cap, len(people) - 1):
            raise Rejected(Failure("refused", Why(10038, group, len(people), cap)))
        if spec.counts_toward_groups_per_user:
            full = [
                Why(
                    10037,
                    person,
                    self.groups_of(person),
                    self.user_limit(person, "groups_per_user"),
                )
                for person in people
                if not allows(self.user_limit(person, "groups_per_user"), self.groups_of(person))
            ]
            if full:
                raise Rejected(Failure("refused", full[0], tuple(full[1:])))
        self.groups[group] = group_type
        self.members[group] = set(people)
        return group_type, len(people)

    def add_members(
        self, group: str, users: Iterable[str], all_or_nothing: bool = False
    ) -> tuple[tuple[Decided, ...], int]:
        """Per user: not_registered (not an account, even if already a member), already,
        refused 10037 (their ``groups_per_user``), or eligible; ``all_or_nothing``: any user
        not an account fails the call naming them all, else a 10037 refuses it (the first);
        then the eligible ones all fit the group or the call is refused whole (10014).
        Returns the items and the group's size after the call."""
        self.require_active()
        if group not in self.groups:
            raise Rejected(Failure("not_found"))
        people = self.members[group]
        decided = []
        for user in dict.fromkeys(users):
            count, cap = self.groups_of(user), self.user_limit(user, "groups_per_user")
            if self.stranger(user):
                decided.append(Decided(user, "not_registered"))
            elif user in people:
                decided.append(Decided(user, "already"))
            elif self.counts_toward_groups(group) and not allows(cap, count):
                decided.append(Decided(user, "refused", Why(10037, user, count, cap)))
            else:
                decided.append(Decided(user, "added"))
        if all_or_nothing:
            strangers = tuple(d.id for d in decided if d.outcome == "not_registered")
            if strangers:
                raise Rejected(Failure("not_registered", accounts=strangers))
            for item in decided:
                if item.why is not None:
                    raise Rejected(Failure("refused", item.why))
        eligible = [item.id for item in decided if item.outcome == "added"]
        cap = self.group_limit(group, self.groups[group])
        if eligible and not allows(cap, len(people) + len(eligible) - 1):
            raise Rejected(Failure("refused", Why(10014, group, len(people), cap)))
        people.update(eligible)
        return tuple(decided), len(people)

    def remove_members(self, group: str, users: Iterable[str]) -> tuple[Decided, ...]:
        if group not in self.groups:
            raise Rejected(Failure("not_found"))
        people = self.members[group]
        decided = []
        for user in dict.fromkeys(users):
            decided.append(Decided(user, "removed" if user in people else "absent"))
            people.discard(user)
        return tuple(decided)

    def destroy_group(self, group: str) -> tuple[bool, int]:
        """Whether it existed, and how many memberships it released."""
        if group not in self.groups:
            return False, 0
        del self.groups[group]
        return True, len(self.members.pop(group))
