"""The engine against an independent model of the rules (``tests/model.py``), step by step.

A Hypothesis state machine draws operations, plan changes and clock moves over six users and
four groups, with the catalog's limits scaled down so every one of them is hit. After each
step the engine's answer must equal the model's, and the counts, effective limits and
over-limit report read back from the engine must equal the model's.

Accounts first (the default ``require_registered``): relations name only registered accounts.
The machine registers some users as it begins, draws the users of a relation from the
registered ones five times in six (so relations happen often, and so do ids that are not
accounts), and also takes accounts off by deleting them and by releasing a reservation that
registered them (their relations stay). One shorter run has the setting off: every id may
then be related, and the over-limit report must still find the ones that are not accounts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from limiter import (
    Catalog,
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    NotRegistered,
    PlanConflict,
    Refused,
)
from limiter.catalog import load_catalog
from limiter.errors import LimiterError, Refusal
from limiter.periods import Period
from limiter.reservations import Reservation
from limiter.results import BatchResult
from limiter.testing import ManualClock
from tests.conftest import APP, EngineFactory, at
from tests.figures import Recorder
from tests.model import APP_LIMITS, Cap, Custom, Days, Decided, Failure, Model, Rejected, Why

USERS = tuple(f"u{n}" for n in range(6))
GROUPS = tuple(f"g{n}" for n in range(4))
ENTITIES = USERS + GROUPS
SOME_USERS = st.lists(st.sampled_from(USERS), min_size=1, max_size=4)
EDITIONS = st.sampled_from(("trial", "pro"))
TYPES = ("Private", "Public", "ChatRoom", "AVChatRoom", "Work", "Meeting")
# Month ends, a year end and a leap day, where the T..T-1 rule has its edge cases.
STARTS = (
    at(2026, 1, 31, 10, 0),
    at(2026, 11, 26, 12, 0),
    at(2026, 12, 31, 23, 59, 59),
    at(2028, 2, 28, 23, 0),
)
# The shipped catalog's numbers, scaled down to what six users and four groups reach.
SMALL_LIMITS: dict[str, dict[str, Cap]] = {
    "trial": {
        "users": 4,
        "friends": 2,
        "groups_per_user": 2,
        "av_chatrooms": 1,
        "group_members": 3,
    },
    "pro": {
        "users": None,
        "friends": 3,
        "groups_per_user": 3,
        "av_chatrooms": 2,
        "group_members": 4,
    },
}
SMALL_RAISES = {
    "group_members_2000": 5,
    "group_members_6000": 6,
    "groups_per_user_400": 4,
    "groups_per_user_700": 5,
    "groups_per_user_1000": 6,
}
OVERRIDE_TARGETS = st.one_of(
    st.tuples(st.just("app"), st.just(""), st.sampled_from((*APP_LIMITS, "group_members"))),
    st.tuples(
        st.just("user"), st.sampled_from(USERS), st.sampled_from(("friends", "groups_per_user"))
    ),
    st.tuples(st.just("group"), st.sampled_from(GROUPS), st.just("group_members")),
)
UNKNOWN_GRANT = "0123456789abcdef"


def small_catalog() -> Catalog:
    """The shipped catalog with small limits (unlimited ones stay unlimited)."""
    data = load_catalog().model_dump()
    for edition, small in SMALL_LIMITS.items():
        limits = data["editions"][edition]["limits"]
        for name, value in small.items():
            if name == "group_members":
                limits[name] = {t: None if v is None else value for t, v in limits[name].items()}
            else:
                limits[name] = value
    for kind, value in SMALL_RAISES.items():
        data["expansions"][kind]["raises"]["value"] = value
    return Catalog.model_validate(data)


# -- the engine's answers in the model's terms ------------------------------------------------


def why(refusal: Refusal) -> Why:
    return Why(refusal.code, refusal.scope_id, refusal.current, refusal.maximum)


def items(result: BatchResult) -> tuple[Decided, ...]:
    return tuple(
        Decided(item.id, str(item.outcome), None if item.refusal is None else why(item.refusal))
        for item in result.items
    )


def days(periods: tuple[Period, ...]) -> tuple[Days, ...]:
    return tuple((period.starts_on, period.ends_on) for period in periods)


FAILURES = (
    (GroupExists, "exists"),
    (GroupNotFound, "not_found"),
    (InvalidRequest, "invalid"),
    (PlanConflict, "conflict"),
)


def answer(call: Callable[[], object]) -> object:
    """What a call answered, or how it failed as a whole (engine errors as model failures)."""
    try:
        return call()
    except Rejected as rejected:
        return rejected.failure
    except Refused as refused:
        return Failure("refused", why(refused.refusal), tuple(why(o) for o in refused.also))
    except NotRegistered as strangers:
        return Failure("not_registered", accounts=strangers.accounts)
    except LimiterError as error:
        for kind, name in FAILURES:
            if isinstance(error, kind):
                return Failure(name)
        raise


@dataclass
class Tally:
    """Steps compared and invariant checks; relation entries made (friend adds, members of
    created groups, member adds) and ids answered not_registered, as the model decided."""

    steps: int = 0
    checks: int = 0
    related: int = 0
    not_registered: int = 0

    def note(self, decided: tuple[Decided, ...] | Failure) -> None:
        if isinstance(decided, Failure):
            self.not_registered += len(decided.accounts)
            return
        self.related += sum(item.outcome == "added" for item in decided)
        self.not_registered += sum(item.outcome == "not_registered" for item in decided)


class LimiterMachine(RuleBasedStateMachine):
    """Each rule runs one step on the engine and on the model; answers must be equal.

    Hypothesis builds a machine per example from its class: :func:`machine_on` makes a
    subclass bound to one engine, its clock and the tally of steps and checks."""

    engine: Any
    clock: ManualClock
    tally: Tally

    def __init__(self) -> None:
        super().__init__()
        self.app = f"model-{uuid.uuid4().hex}"  # a fresh app: examples share the store
        timezone = ZoneInfo(self.engine.settings.timezone)
        self.model = Model(
            self.engine.catalog,
            self.app,
            self.clock,
            timezone,
            accounts_first=self.engine.settings.require_registered,
        )
        self.verified: dict[str, object] = {}  # the per-entity counts last read back
        self.rounds = 0
        # reservations that registered accounts, not released yet; with the ones each added
        self.held: list[tuple[Reservation, tuple[str, ...]]] = []

    def both(self, engine_call: Callable[[], object], model_call: Callable[[], object]) -> object:
        """Run the step on both; their answers must be equal. Returns the model's."""
        actual = answer(engine_call)
        expected = answer(model_call)
        assert actual == expected, f"engine answered {actual!r}, the model {expected!r}"
        self.tally.steps += 1
        return expected

    def day(self, offset: int) -> date:
        return self.model.today() + timedelta(days=offset)

    def group_of(self, data: st.DataObject, live: bool) -> str:
        """A group id: half the time one that exists (``live``) or not, else any."""
        chosen = [g for g in GROUPS if (g in self.model.groups) == live]
        pool = st.sampled_from(GROUPS)
        return data.draw(st.sampled_from(chosen) | pool if chosen else pool)

    def someone(self, besides: str | None = None) -> st.SearchStrategy[str]:
        """A user id: five times in six a registered account other than ``besides`` (when
        there is one), else any: a relation fails whole when its requester, owner or a
        member is not an account, and a friend add naming its requester as a peer too."""
        accounts = sorted(self.model.users - {besides})
        pool = st.sampled_from(USERS)
        if not accounts:
            return pool
        return st.one_of(*[st.sampled_from(accounts)] * 5, pool)

    def user_of(self, data: st.DataObject) -> str:
        return data.draw(self.someone())

    def users_of(
        self,
        data: st.DataObject,
        min_size: int = 1,
        max_size: int = 4,
        besides: str | None = None,
    ) -> list[str]:
        return data.draw(st.lists(self.someone(besides), min_size=min_size, max_size=max_size))

    def set_edition(self, edition: str, offset: int, months: int) -> None:
        bought = self.day(offset) if edition == "pro" else None
        self.both(
            lambda: days(self.engine.set_edition(self.app, edition, bought, months).periods),
            lambda: self.model.set_edition(edition, bought, months),
        )

    @initialize(
        start=st.sampled_from(STARTS),
        edition=EDITIONS,
        offset=st.integers(-40, 0),
        months=st.integers(1, 2),
        accounts=st.lists(st.sampled_from(USERS), unique=True, max_size=len(USERS)),
    )
    def begin(
        self, start: datetime, edition: str, offset: int, months: int, accounts: list[str]
    ) -> None:
        """The clock, the edition, and the first accounts (relations need them)."""
        self.clock.set(start)
        self.set_edition(edition, offset, months)
        if accounts:
            self.register_users(accounts)

    # -- accounts, friends, groups ------------------------------------------------------------

    @rule(users=SOME_USERS)
    def register_users(self, users: list[str]) -> None:
        self.both(
            lambda: items(self.engine.register_users(self.app, users)),
            lambda: self.model.register_users(users),
        )

    @rule(users=SOME_USERS)
    def reserve_accounts(self, users: list[str]) -> None:
        """Register accounts ahead (all or nothing), to be released by a later step."""
        made: list[Reservation] = []

        def engine_side() -> object:
            reservation = self.engine.reserve(self.app, "register_users", {"users": users})
            made.append(reservation)
            return items(reservation.result)

        decided = self.both(
            engine_side, lambda: self.model.register_users(users, all_or_nothing=True)
        )
        if made and isinstance(decided, tuple):
            added = tuple(item.id for item in decided if item.outcome == "added")
            self.held.append((made[0], added))

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def release_accounts(self, data: st.DataObject) -> None:
        """Unregister what a reservation registered (its caller failed): the accounts go
        (even if deleted and registered again since), the relations they made since stay."""
        reservation, added = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
        self.both(
            lambda: self.engine.release(reservation),
            lambda: self.model.unregister(added),
        )

    @rule(users=st.lists(st.sampled_from(USERS), min_size=1, max_size=2))
    def delete_users(self, users: list[str]) -> None:
        def engine_side() -> object:
            deleted = self.engine.delete_users(self.app, users).users
            return tuple(
                (d.id, d.registered, d.friendships_released, d.memberships_released)
                for d in deleted
            )

        self.both(engine_side, lambda: self.model.delete_users(users))

    @rule(data=st.data(), both_ways=st.booleans(), all_or_nothing=st.booleans())
    def add_friends(self, data: st.DataObject, both_ways: bool, all_or_nothing: bool) -> None:
        user = self.user_of(data)
        peers = self.users_of(data, besides=user)
        decided = self.both(
            lambda: items(
                self.engine.add_friends(
                    self.app, user, peers, both_ways, all_or_nothing=all_or_nothing
                )
            ),
            lambda: self.model.add_friends(user, peers, both_ways, all_or_nothing),
        )
        if isinstance(decided, tuple | Failure):
            self.tally.note(decided)

    @rule(user=st.sampled_from(USERS), peers=SOME_USERS, both_ways=st.booleans())
    def remove_friends(self, user: str, peers: list[str], both_ways: bool) -> None:
        self.both(
            lambda: items(self.engine.remove_friends(self.app, user, peers, both_ways)),
            lambda: self.model.remove_friends(user, peers, both_ways),
        )

    @rule(data=st.data(), group_type=st.sampled_from(TYPES))
    def create_group(self, data: st.DataObject, group_type: str) -> None:
        group = self.group_of(data, live=False)
        owner = self.user_of(data)
        members = self.users_of(data, min_size=0, max_size=3, besides=owner)

        def engine_side() -> object:
            created = self.engine.create_group(self.app, group, group_type, owner, members)
            return created.type, created.members

        made = self.both(
            engine_side, lambda: self.model.create_group(group, group_type, owner, members)
        )
        if isinstance(made, Failure):
            self.tally.note(made)
        elif isinstance(made, tuple):
            self.tally.related += made[1]

    @rule(data=st.data(), all_or_nothing=st.booleans())
    def add_members(self, data: st.DataObject, all_or_nothing: bool) -> None:
        group = self.group_of(data, live=True)
        users = self.users_of(data)

        def engine_side() -> object:
            added = self.engine.add_members(self.app, group, users, all_or_nothing=all_or_nothing)
            return items(added), added.size

        decided = self.both(
            engine_side, lambda: self.model.add_members(group, users, all_or_nothing)
        )
        if isinstance(decided, Failure):
            self.tally.note(decided)
        elif isinstance(decided, tuple):
            self.tally.note(decided[0])

    @rule(data=st.data(), users=SOME_USERS)
    def remove_members(self, data: st.DataObject, users: list[str]) -> None:
        group = self.group_of(data, live=True)
        self.both(
            lambda: items(self.engine.remove_members(self.app, group, users)),
            lambda: self.model.remove_members(group, users),
        )

    @rule(data=st.data())
    def destroy_group(self, data: st.DataObject) -> None:
        group = self.group_of(data, live=True)

        def engine_side() -> object:
            destroyed = self.engine.destroy_group(self.app, group)
            return destroyed.existed, destroyed.members_released

        self.both(engine_side, lambda: self.model.destroy_group(group))

    # -- plan changes ---------------------------------------------------------------------------

    @rule(edition=EDITIONS, offset=st.integers(-62, 3), months=st.integers(1, 3))
    def change_edition(self, edition: str, offset: int, months: int) -> None:
        self.set_edition(edition, offset, months)

    @rule(months=st.integers(1, 2))
    def renew(self, months: int) -> None:
        self.both(
            lambda: days(self.engine.renew(self.app, months).periods),
            lambda: self.model.renew(months),
        )

    @rule(
        kind=st.sampled_from(sorted(load_catalog().expansions)),
        offset=st.integers(-40, 2),
        months=st.integers(1, 2),
        chosen=st.integers(8, 360),
    )
    def add_expansion(self, kind: str, offset: int, months: int, chosen: int) -> None:
        bought = self.day(offset)
        chosen_days = (
            chosen if self.engine.catalog.expansions[kind].raises.chosen_by_buyer else None
        )
        made: list[str] = []

        def engine_side() -> object:
            grant = self.engine.add_expansion(self.app, kind, bought, months, chosen_days)
            made.append(grant.id)
            return days(grant.periods)

        self.both(
            engine_side,
            lambda: self.model.add_expansion(
                made[0] if made else UNKNOWN_GRANT, kind, bought, months, chosen_days
            ),
        )

    @rule(data=st.data())
    def remove_expansion(self, data: st.DataObject) -> None:
        # in the order bought, not by id: ids are random, and a draw must replay the same
        grant_id = data.draw(st.sampled_from([*self.model.grants, UNKNOWN_GRANT]))
        self.both(
            lambda: self.engine.remove_expansion(self.app, grant_id),
            lambda: self.model.remove_expansion(grant_id),
        )

    @rule(
        scoped=OVERRIDE_TARGETS,
        value=st.none() | st.integers(0, 6),
        lasts=st.none() | st.integers(1, 72 * 3600),
    )
    def set_override(self, scoped: tuple[str, str, str], value: Cap, lasts: int | None) -> None:
        scope, subject, limit = scoped
        expires_at = None if lasts is None else self.clock.now() + timedelta(seconds=lasts)
        who = {scope: subject} if scope != "app" else {}

        def engine_side() -> object:
            override = self.engine.set_override(self.app, limit, value, expires_at, **who)
            return Custom(override.value, override.expires_at)

        self.both(
            engine_side,
            lambda: self.model.set_override(scope, subject, limit, value, expires_at),
        )

    @rule(scoped=OVERRIDE_TARGETS)
    def clear_override(self, scoped: tuple[str, str, str]) -> None:
        scope, subject, limit = scoped
        who = {scope: subject} if scope != "app" else {}
        self.both(
            lambda: self.engine.clear_override(self.app, limit, **who),
            lambda: self.model.clear_override(scope, subject, limit),
        )

    # -- time -------------------------------------------------------------------------------------

    @rule(seconds=st.integers(1, 2 * 86400))
    def wait(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    @rule(data=st.data(), offset=st.sampled_from((-1, 0, 1)))
    def jump(self, data: st.DataObject, offset: int) -> None:
        """To just before, at or just after the next midnight, the end of paid days or of
        grace, an expansion's first or last day, an override's expiry."""
        target = data.draw(st.sampled_from(self.model.boundaries()))
        self.clock.set(max(self.clock.now(), target + timedelta(seconds=offset)))

    # -- read-backs -------------------------------------------------------------------------------

    def expected_counts(self) -> dict[str, object]:
        """Per user (registered, friends, counted groups) and per group (type, members) or
        None, as the model has them."""
        model = self.model
        counts: dict[str, object] = {
            user: (user in model.users, model.friends_of(user), model.groups_of(user))
            for user in USERS
        }
        for group in GROUPS:
            found = model.groups.get(group)
            counts[group] = None if found is None else (found, len(model.members[group]))
        return counts

    def engine_counts(self, subject: str) -> object:
        if subject in USERS:
            mine = self.engine.user_usage(self.app, subject)
            return mine.registered, mine.friends, mine.groups
        found = self.engine.group_usage(self.app, subject)
        return None if found is None else (found.type, found.members)

    @invariant()
    def counts_agree(self) -> None:
        """App-wide counts every step; per user and group, those the model saw change (the
        engine's reads cost a round trip each) and one more in turn, so a count only the
        engine changed is caught within len(ENTITIES) steps."""
        usage = self.engine.usage(self.app)
        model = self.model
        assert (usage.users, usage.groups, usage.av_chatrooms) == (
            len(model.users),
            len(model.groups),
            model.av_rooms(),
        )
        expected = self.expected_counts()
        subjects = {s for s, counts in expected.items() if self.verified.get(s) != counts}
        subjects.add(ENTITIES[self.rounds % len(ENTITIES)])
        for subject in sorted(subjects):
            assert self.engine_counts(subject) == expected[subject], subject
        self.verified, self.rounds = expected, self.rounds + 1
        self.tally.checks += 1

    @invariant()
    def limits_agree(self) -> None:
        limits = self.engine.limits(self.app)
        model = self.model
        period = None if limits.period is None else (limits.period.starts_on, limits.period.ends_on)
        assert (limits.edition, str(limits.status), period) == (model.edition, *model.state())
        assert {name: limits.app[name].value for name in APP_LIMITS} == {
            name: model.app_limit(name) for name in APP_LIMITS
        }
        types = self.engine.catalog.group_types
        assert {t: limits.group_members[t].value for t in types} == {
            t: model.type_limit(t) for t in types
        }
        for user in USERS:
            for limit in ("friends", "groups_per_user"):
                assert limits.for_user(user, limit).value == model.user_limit(user, limit)
        for group in GROUPS:
            for group_type in types:
                found = limits.for_group(group, group_type).value
                assert found == model.group_limit(group, group_type), (group, group_type)
        self.tally.checks += 1

    @invariant()
    def over_limit_agrees(self) -> None:
        reported = {
            (o.scope, o.id, o.limit, o.current, o.maximum) for o in self.engine.over_limit(self.app)
        }
        assert reported == self.model.over_limit()
        self.tally.checks += 1


def machine_on(engine: Any, clock: ManualClock, tally: Tally) -> type[LimiterMachine]:
    bound = {"engine": engine, "clock": clock, "tally": tally}
    return type("LimiterMachineOnEngine", (LimiterMachine,), bound)


def run_machine(
    make_engine: EngineFactory,
    clock: ManualClock,
    figures: Recorder,
    request: pytest.FixtureRequest,
    runs: settings,
    **engine_settings: Any,
) -> None:
    """Run the machine on one backend and mode; record how many steps and checks it did."""
    engine = make_engine(catalog=small_catalog(), **engine_settings)
    accounts_first = engine.settings.require_registered
    tally = Tally()
    params = request.node.callspec.params
    where = f"{params['backend']}, {params['make_engine']}"
    if not accounts_first:
        where += ", registration not required"
    try:
        run_state_machine_as_test(machine_on(engine, clock, tally), settings=runs)
    finally:
        figures.record("model", f"state-machine steps compared ({where})", tally.steps)
        figures.record("model", f"invariant checks ({where})", tally.checks)
        figures.record("model", f"relation entries made ({where})", tally.related)
        figures.record("model", f"ids answered not registered ({where})", tally.not_registered)
    assert tally.steps > 0
    # accounts first must not starve the machine: relations are made, and strangers refused
    assert tally.related > 0, tally
    assert (tally.not_registered > 0) is accounts_first, tally


# No deadline and no too_slow check: a step is a Redis round trip, and this machine is shared
# (a slow step is not a failure; a different answer is).
SHARED: dict[str, Any] = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow],
}


def test_engine_agrees_with_the_model(
    make_engine: EngineFactory,
    clock: ManualClock,
    figures: Recorder,
    request: pytest.FixtureRequest,
) -> None:
    runs = settings(max_examples=40, stateful_step_count=40, **SHARED)
    run_machine(make_engine, clock, figures, request, runs)


def test_engine_agrees_with_the_model_when_registration_is_not_required(
    make_engine: EngineFactory,
    clock: ManualClock,
    figures: Recorder,
    request: pytest.FixtureRequest,
) -> None:
    """The setting off: relations of ids that are not accounts are allowed (the strays)."""
    runs = settings(max_examples=15, stateful_step_count=40, **SHARED)
    run_machine(make_engine, clock, figures, request, runs, require_registered=False)


@pytest.mark.heavy
def test_engine_agrees_with_the_model_at_length(
    make_engine: EngineFactory,
    clock: ManualClock,
    figures: Recorder,
    request: pytest.FixtureRequest,
) -> None:
    runs = settings(max_examples=500, stateful_step_count=80, **SHARED)
    run_machine(make_engine, clock, figures, request, runs)


def test_renewing_a_package_not_yet_begun_extends_it_from_its_end(
    engine: Any, clock: ManualClock
) -> None:
    """contract.md: "once suspended, a renewal starts today" speaks of a package that lapsed
    (suspended after grace). A package bought ahead is also reported suspended until its first
    day, but starting its renewal today would overlap the days already bought: the engine (and
    the model) extend it from the day after its end, as for an active package."""
    today = clock.now().date()
    engine.set_edition(APP, "pro", purchased_on=today + timedelta(days=3))
    assert str(engine.limits(APP).status) == "suspended"
    bought = engine.plan(APP).periods
    renewed = engine.renew(APP).periods
    assert renewed[-1].starts_on == bought[-1].ends_on + timedelta(days=1)
    assert renewed[0].starts_on == today + timedelta(days=3)
