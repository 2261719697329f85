"""Edition states and effective limits: editions, expansions, overrides, and what would lift."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from limiter.catalog import Catalog, load_catalog
from limiter.errors import ConfigurationError, Lift
from limiter.limits import APP_LIMITS, Limit, Status, edition_state, resolve
from limiter.periods import Period, consecutive_periods
from limiter.plan import ExpansionGrant, Override, PlanState

SHANGHAI = ZoneInfo("Asia/Shanghai")
CATALOG: Catalog = load_catalog()
LIMITED_TYPES = ("Private", "Public", "ChatRoom")


def d(text: str) -> date:
    return date.fromisoformat(text)


def bj(text: str) -> datetime:
    """An instant given as Beijing wall time, ``YYYY-MM-DDTHH:MM:SS``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def span(start: str, end: str) -> Period:
    return Period(d(start), d(end))


def pro(*periods: Period, **changes: object) -> PlanState:
    return PlanState("pro", periods=tuple(periods), **changes)  # type: ignore[arg-type]


def grant(
    kind: str, start: str = "2026-01-15", months: int = 1, days: int | None = None
) -> ExpansionGrant:
    return ExpansionGrant(
        id=f"{kind}-{start}",
        kind=kind,
        periods=consecutive_periods(d(start), months),
        days=days,
    )


# A pro app paid 2026-01-15 -> 2026-02-14 (one month).
ONE_MONTH = consecutive_periods(d("2026-01-15"), 1)
# A pro app paid 2026-01-31 x2: Jan 31 -> Feb 28, then Mar 1 -> Mar 31.
TWO_MONTHS = consecutive_periods(d("2026-01-31"), 2)
# A pro app paid through the whole of the first half of 2026 (for the limit tables).
HALF_YEAR = consecutive_periods(d("2026-01-01"), 6)
NOW = bj("2026-02-01T12:00:00")


# -- edition_state ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        bj("2000-01-01T00:00:00"),
        bj("2026-02-15T00:00:01"),
        bj("2099-12-31T23:59:59"),
        datetime(2026, 11, 30, 16, 0, 0, tzinfo=UTC),
    ],
)
def test_trial_is_active_forever(now: datetime) -> None:
    state = edition_state(CATALOG, PlanState("trial"), now, SHANGHAI)
    assert state.edition == "trial"
    assert state.status is Status.ACTIVE
    assert state.period is None


def test_trial_with_stray_periods_is_still_active() -> None:
    plan = PlanState("trial", periods=ONE_MONTH)
    state = edition_state(CATALOG, plan, bj("2027-06-01T00:00:00"), SHANGHAI)
    assert state.status is Status.ACTIVE
    assert state.period is None


@pytest.mark.parametrize(
    ("periods", "now", "status", "period"),
    [
        # before the first period starts
        (ONE_MONTH, bj("2026-01-01T00:00:00"), Status.SUSPENDED, None),
        (ONE_MONTH, bj("2026-01-14T23:59:59"), Status.SUSPENDED, None),
        # the paid days, from the first day's first second to the last day's last second
        (ONE_MONTH, bj("2026-01-15T00:00:00"), Status.ACTIVE, span("2026-01-15", "2026-02-14")),
        (ONE_MONTH, bj("2026-02-01T12:00:00"), Status.ACTIVE, span("2026-01-15", "2026-02-14")),
        (ONE_MONTH, bj("2026-02-14T23:59:59"), Status.ACTIVE, span("2026-01-15", "2026-02-14")),
        # grace: the 24 hours after the last paid day ends
        (ONE_MONTH, bj("2026-02-15T00:00:00"), Status.GRACE, span("2026-01-15", "2026-02-14")),
        (ONE_MONTH, bj("2026-02-15T00:00:01"), Status.GRACE, span("2026-01-15", "2026-02-14")),
        (ONE_MONTH, bj("2026-02-15T23:59:59"), Status.GRACE, span("2026-01-15", "2026-02-14")),
        # suspended exactly 24 hours after the end, and later
        (ONE_MONTH, bj("2026-02-16T00:00:00"), Status.SUSPENDED, span("2026-01-15", "2026-02-14")),
        (ONE_MONTH, bj("2026-02-16T00:00:01"), Status.SUSPENDED, span("2026-01-15", "2026-02-14")),
        (ONE_MONTH, bj("2027-01-01T00:00:00"), Status.SUSPENDED, span("2026-01-15", "2026-02-14")),
        # the same edges given as UTC instants (Beijing is UTC+8)
        (
            ONE_MONTH,
            datetime(2026, 2, 14, 15, 59, 59, tzinfo=UTC),
            Status.ACTIVE,
            span("2026-01-15", "2026-02-14"),
        ),
        (
            ONE_MONTH,
            datetime(2026, 2, 14, 16, 0, 0, tzinfo=UTC),
            Status.GRACE,
            span("2026-01-15", "2026-02-14"),
        ),
        (
            ONE_MONTH,
            datetime(2026, 2, 15, 15, 59, 59, tzinfo=UTC),
            Status.GRACE,
            span("2026-01-15", "2026-02-14"),
        ),
        (
            ONE_MONTH,
            datetime(2026, 2, 15, 16, 0, 0, tzinfo=UTC),
            Status.SUSPENDED,
            span("2026-01-15", "2026-02-14"),
        ),
        # two contiguous periods are one span: no grace at the seam, period = the whole span
        (TWO_MONTHS, bj("2026-01-31T00:00:00"), Status.ACTIVE, span("2026-01-31", "2026-03-31")),
        (TWO_MONTHS, bj("2026-02-28T23:59:59"), Status.ACTIVE, span("2026-01-31", "2026-03-31")),
        (TWO_MONTHS, bj("2026-03-01T00:00:01"), Status.ACTIVE, span("2026-01-31", "2026-03-31")),
        (TWO_MONTHS, bj("2026-03-31T23:59:59"), Status.ACTIVE, span("2026-01-31", "2026-03-31")),
        (TWO_MONTHS, bj("2026-04-01T00:00:01"), Status.GRACE, span("2026-01-31", "2026-03-31")),
        (TWO_MONTHS, bj("2026-04-02T00:00:00"), Status.SUSPENDED, span("2026-01-31", "2026-03-31")),
        # no periods at all
        ((), bj("2026-02-01T00:00:00"), Status.SUSPENDED, None),
        # renewed after a lapse: the gap is suspended (last span), the new span active
        (
            (*ONE_MONTH, *consecutive_periods(d("2026-03-10"), 1)),
            bj("2026-03-09T23:59:59"),
            Status.SUSPENDED,
            span("2026-01-15", "2026-02-14"),
        ),
        (
            (*ONE_MONTH, *consecutive_periods(d("2026-03-10"), 1)),
            bj("2026-03-10T00:00:00"),
            Status.ACTIVE,
            span("2026-03-10", "2026-04-09"),
        ),
        # year end
        (
            consecutive_periods(d("2026-12-20"), 1),
            bj("2027-01-19T23:59:59"),
            Status.ACTIVE,
            span("2026-12-20", "2027-01-19"),
        ),
        (
            consecutive_periods(d("2026-12-20"), 1),
            bj("2027-01-20T08:00:00"),
            Status.GRACE,
            span("2026-12-20", "2027-01-19"),
        ),
    ],
)
def test_pro_edition_state(
    periods: tuple[Period, ...], now: datetime, status: Status, period: Period | None
) -> None:
    plan = pro(*periods)
    state = edition_state(CATALOG, plan, now, SHANGHAI)
    assert state.edition == "pro"
    assert state.status is status
    assert state.period == period
    limits = resolve(CATALOG, plan, now, SHANGHAI)
    assert limits.status is status
    assert limits.period == period


NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("last_day", "now", "status"),
    [
        # no DST change: 24 real hours of grace in a configurable non-Beijing timezone
        ("2026-01-14", datetime(2026, 1, 16, 4, 59, 59, tzinfo=UTC), Status.GRACE),
        ("2026-01-14", datetime(2026, 1, 16, 5, 0, 0, tzinfo=UTC), Status.SUSPENDED),
        # the last paid day ends 2026-03-08T05:00Z (EST), the night clocks spring forward:
        # 23h30m later is still within the 24 hours
        pytest.param(
            "2026-03-07",
            datetime(2026, 3, 9, 4, 30, 0, tzinfo=UTC),
            Status.GRACE,
        ),
        ("2026-03-07", datetime(2026, 3, 9, 5, 0, 0, tzinfo=UTC), Status.SUSPENDED),
        # the last paid day ends 2026-11-01T04:00Z (EDT), the night clocks fall back:
        # 24h30m later grace is over
        ("2026-10-31", datetime(2026, 11, 2, 3, 59, 59, tzinfo=UTC), Status.GRACE),
        pytest.param(
            "2026-10-31",
            datetime(2026, 11, 2, 4, 30, 0, tzinfo=UTC),
            Status.SUSPENDED,
        ),
    ],
)
def test_grace_is_24_real_hours_in_any_timezone(
    last_day: str, now: datetime, status: Status
) -> None:
    plan = pro(Period(d(last_day) - timedelta(days=27), d(last_day)))
    state = edition_state(CATALOG, plan, now, NEW_YORK)
    assert state.status is status


# -- resolve: editions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "app", "members"),
    [
        (
            PlanState("trial"),
            {
                "users": 100,
                "friends": 20,
                "groups_per_user": 50,
                "av_chatrooms": 10,
                "history_days": 7,
            },
            {"Private": 20, "Public": 20, "ChatRoom": 20, "AVChatRoom": None},
        ),
        (
            pro(*HALF_YEAR),
            {
                "users": None,
                "friends": 3000,
                "groups_per_user": 200,
                "av_chatrooms": 50,
                "history_days": 7,
            },
            {"Private": 200, "Public": 200, "ChatRoom": 200, "AVChatRoom": None},
        ),
    ],
)
def test_edition_limits(
    plan: PlanState, app: dict[str, int | None], members: dict[str, int | None]
) -> None:
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    assert limits.edition == plan.edition
    assert set(limits.app) == set(APP_LIMITS)
    for name, value in app.items():
        assert limits.app[name] == Limit(value, "edition", plan.edition), name
    assert dict(limits.group_members) == {
        group_type: Limit(value, "edition", plan.edition) for group_type, value in members.items()
    }


# -- resolve: expansions ----------------------------------------------------------------------


def _edition_value(limit: str, group_type: str | None = None) -> Limit:
    pro_limits = CATALOG.editions["pro"].limits
    if group_type is not None:
        return Limit(pro_limits.group_members[group_type], "edition", "pro")
    return Limit(getattr(pro_limits, limit), "edition", "pro")


@pytest.mark.parametrize(
    ("grants", "limit", "expected"),
    [
        ([], "groups_per_user", _edition_value("groups_per_user")),
        # two of one family: the larger wins, not the sum, whatever the order
        (
            [grant("groups_per_user_400"), grant("groups_per_user_1000")],
            "groups_per_user",
            Limit(1000, "expansion", "groups_per_user_1000"),
        ),
        (
            [grant("groups_per_user_1000"), grant("groups_per_user_400")],
            "groups_per_user",
            Limit(1000, "expansion", "groups_per_user_1000"),
        ),
        (
            [grant("groups_per_user_700")],
            "groups_per_user",
            Limit(700, "expansion", "groups_per_user_700"),
        ),
        (
            [grant("groups_per_user_400"), grant("groups_per_user_700")],
            "groups_per_user",
            Limit(700, "expansion", "groups_per_user_700"),
        ),
        # history extension: the buyer's days
        (
            [grant("history_extension", days=30)],
            "history_days",
            Limit(30, "expansion", "history_extension"),
        ),
        (
            [grant("history_extension", days=360)],
            "history_days",
            Limit(360, "expansion", "history_extension"),
        ),
        # unlimited AV rooms
        (
            [grant("av_chatrooms_unlimited")],
            "av_chatrooms",
            Limit(None, "expansion", "av_chatrooms_unlimited"),
        ),
        # an expansion leaves the other limits alone
        ([grant("av_chatrooms_unlimited")], "groups_per_user", _edition_value("groups_per_user")),
        ([grant("groups_per_user_1000")], "friends", _edition_value("friends")),
        # expired, or not yet started: no effect
        (
            [grant("groups_per_user_1000", start="2025-11-01")],
            "groups_per_user",
            _edition_value("groups_per_user"),
        ),
        (
            [grant("groups_per_user_1000", start="2026-02-02")],
            "groups_per_user",
            _edition_value("groups_per_user"),
        ),
        (
            [grant("av_chatrooms_unlimited", start="2025-12-20")],
            "av_chatrooms",
            _edition_value("av_chatrooms"),
        ),
        (
            [grant("history_extension", start="2026-03-01", days=90)],
            "history_days",
            _edition_value("history_days"),
        ),
        # an expired larger one does not hide an active smaller one
        (
            [grant("groups_per_user_1000", start="2025-11-01"), grant("groups_per_user_400")],
            "groups_per_user",
            Limit(400, "expansion", "groups_per_user_400"),
        ),
        # a kind the catalog does not know is ignored
        ([grant("mystery_boost")], "groups_per_user", _edition_value("groups_per_user")),
    ],
)
def test_app_expansions(grants: list[ExpansionGrant], limit: str, expected: Limit) -> None:
    limits = resolve(CATALOG, pro(*HALF_YEAR, expansions=tuple(grants)), NOW, SHANGHAI)
    assert limits.app[limit] == expected


@pytest.mark.parametrize(
    ("grants", "expected"),
    [
        ([], {t: _edition_value("group_members", t) for t in LIMITED_TYPES}),
        (
            [grant("group_members_2000")],
            dict.fromkeys(LIMITED_TYPES, Limit(2000, "expansion", "group_members_2000")),
        ),
        (
            [grant("group_members_6000")],
            dict.fromkeys(LIMITED_TYPES, Limit(6000, "expansion", "group_members_6000")),
        ),
        (
            [grant("group_members_2000"), grant("group_members_6000")],
            dict.fromkeys(LIMITED_TYPES, Limit(6000, "expansion", "group_members_6000")),
        ),
        (
            [grant("group_members_6000"), grant("group_members_2000")],
            dict.fromkeys(LIMITED_TYPES, Limit(6000, "expansion", "group_members_6000")),
        ),
        (
            [grant("group_members_2000", start="2025-12-01")],
            {t: _edition_value("group_members", t) for t in LIMITED_TYPES},
        ),
        (
            [grant("group_members_2000", start="2026-02-15")],
            {t: _edition_value("group_members", t) for t in LIMITED_TYPES},
        ),
    ],
)
def test_group_member_expansions(grants: list[ExpansionGrant], expected: dict[str, Limit]) -> None:
    limits = resolve(CATALOG, pro(*HALF_YEAR, expansions=tuple(grants)), NOW, SHANGHAI)
    for group_type, limit in expected.items():
        assert limits.group_members[group_type] == limit, group_type
    # an AVChatRoom's membership stays unlimited, set by the edition
    assert limits.group_members["AVChatRoom"] == Limit(None, "edition", "pro")


@pytest.mark.parametrize(
    ("now", "value"),
    [
        # grant 2026-01-15 -> 2026-02-14: active on its days, Beijing dates
        (bj("2026-01-14T23:59:59"), 200),
        (bj("2026-01-15T00:00:00"), 2000),
        (bj("2026-02-14T23:59:59"), 2000),
        (bj("2026-02-15T00:00:00"), 200),
        (datetime(2026, 2, 14, 15, 59, 59, tzinfo=UTC), 2000),
        (datetime(2026, 2, 14, 16, 0, 0, tzinfo=UTC), 200),
    ],
)
def test_expansion_is_active_on_its_paid_days(now: datetime, value: int) -> None:
    plan = pro(*HALF_YEAR, expansions=(grant("group_members_2000"),))
    limits = resolve(CATALOG, plan, now, SHANGHAI)
    assert limits.group_members["Private"].value == value


@pytest.mark.parametrize(
    "kind",
    ["group_members_2000", "groups_per_user_1000", "av_chatrooms_unlimited", "history_extension"],
)
def test_expansion_on_trial_has_no_effect(kind: str) -> None:
    plan = PlanState("trial", expansions=(grant(kind, days=30 if "history" in kind else None),))
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    trial = resolve(CATALOG, PlanState("trial"), NOW, SHANGHAI)
    assert limits.app == trial.app
    assert limits.group_members == trial.group_members
    assert limits.group_members["Private"] == Limit(20, "edition", "trial")
    assert limits.app["groups_per_user"] == Limit(50, "edition", "trial")
    assert limits.app["av_chatrooms"] == Limit(10, "edition", "trial")
    assert limits.app["history_days"] == Limit(7, "edition", "trial")


# -- resolve: app overrides -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edition", "overrides", "limit", "expected"),
    [
        # lowers and raises
        ("pro", {"friends": Override(10)}, "friends", Limit(10, "override", "app")),
        ("pro", {"friends": Override(5000)}, "friends", Limit(5000, "override", "app")),
        ("trial", {"users": Override(150)}, "users", Limit(150, "override", "app")),
        ("trial", {"users": Override(5)}, "users", Limit(5, "override", "app")),
        ("pro", {"users": Override(1000)}, "users", Limit(1000, "override", "app")),
        # None is unlimited
        ("trial", {"users": Override(None)}, "users", Limit(None, "override", "app")),
        ("pro", {"av_chatrooms": Override(None)}, "av_chatrooms", Limit(None, "override", "app")),
        # zero is a limit, not "unlimited"
        ("pro", {"friends": Override(0)}, "friends", Limit(0, "override", "app")),
        # expiry relative to now: future applies, past (or exactly now) is ignored
        (
            "pro",
            {"friends": Override(10, expires_at=NOW + timedelta(days=1))},
            "friends",
            Limit(10, "override", "app"),
        ),
        (
            "pro",
            {"friends": Override(10, expires_at=NOW + timedelta(seconds=1))},
            "friends",
            Limit(10, "override", "app"),
        ),
        (
            "pro",
            {"friends": Override(10, expires_at=NOW - timedelta(seconds=1))},
            "friends",
            Limit(3000, "edition", "pro"),
        ),
        (
            "pro",
            {"friends": Override(10, expires_at=NOW)},
            "friends",
            Limit(3000, "edition", "pro"),
        ),
        (
            "trial",
            {"users": Override(None, expires_at=NOW - timedelta(days=30))},
            "users",
            Limit(100, "edition", "trial"),
        ),
        # expiry given in another offset is the same instant
        (
            "pro",
            {"friends": Override(10, expires_at=datetime(2026, 2, 1, 4, 0, 1, tzinfo=UTC))},
            "friends",
            Limit(10, "override", "app"),
        ),
        (
            "pro",
            {"friends": Override(10, expires_at=datetime(2026, 2, 1, 3, 59, 59, tzinfo=UTC))},
            "friends",
            Limit(3000, "edition", "pro"),
        ),
        # an override of one limit leaves the others alone
        ("pro", {"friends": Override(10)}, "groups_per_user", Limit(200, "edition", "pro")),
    ],
)
def test_app_overrides(
    edition: str, overrides: dict[str, Override], limit: str, expected: Limit
) -> None:
    plan = PlanState(
        edition, periods=HALF_YEAR if edition == "pro" else (), app_overrides=overrides
    )
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    assert limits.app[limit] == expected


def test_app_override_beats_an_expansion() -> None:
    plan = pro(
        *HALF_YEAR,
        expansions=(grant("groups_per_user_1000"), grant("group_members_6000")),
        app_overrides={"groups_per_user": Override(300), "group_members": Override(250)},
    )
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    assert limits.app["groups_per_user"] == Limit(300, "override", "app")
    for group_type in LIMITED_TYPES:
        assert limits.group_members[group_type] == Limit(250, "override", "app")


@pytest.mark.parametrize(("value"), [5, 500, None])
def test_app_override_of_group_members_spares_avchatrooms(value: int | None) -> None:
    plan = PlanState("trial", app_overrides={"group_members": Override(value)})
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    for group_type in LIMITED_TYPES:
        assert limits.group_members[group_type] == Limit(value, "override", "app")
    assert limits.group_members["AVChatRoom"] == Limit(None, "edition", "trial")


# -- entity overrides -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app_overrides", "user_overrides", "user", "limit", "expected"),
    [
        # no overrides: the app's limit
        ({}, {}, "alice", "friends", Limit(3000, "edition", "pro")),
        # the app override applies to everyone without their own
        ({"friends": Override(10)}, {}, "alice", "friends", Limit(10, "override", "app")),
        # the user's override beats the app's, lower or higher
        (
            {"friends": Override(10)},
            {("alice", "friends"): Override(50)},
            "alice",
            "friends",
            Limit(50, "override", "user:alice"),
        ),
        (
            {"friends": Override(100)},
            {("alice", "friends"): Override(5)},
            "alice",
            "friends",
            Limit(5, "override", "user:alice"),
        ),
        (
            {},
            {("alice", "friends"): Override(None)},
            "alice",
            "friends",
            Limit(None, "override", "user:alice"),
        ),
        # another user keeps the app's limit
        (
            {"friends": Override(10)},
            {("alice", "friends"): Override(50)},
            "bob",
            "friends",
            Limit(10, "override", "app"),
        ),
        # an override of one limit is not one of the other
        (
            {},
            {("alice", "friends"): Override(50)},
            "alice",
            "groups_per_user",
            Limit(200, "edition", "pro"),
        ),
        (
            {},
            {("alice", "groups_per_user"): Override(20)},
            "alice",
            "groups_per_user",
            Limit(20, "override", "user:alice"),
        ),
        # an expired user override falls back to the app's limit
        (
            {"friends": Override(10)},
            {("alice", "friends"): Override(50, expires_at=NOW - timedelta(seconds=1))},
            "alice",
            "friends",
            Limit(10, "override", "app"),
        ),
        (
            {},
            {("alice", "friends"): Override(50, expires_at=NOW + timedelta(hours=1))},
            "alice",
            "friends",
            Limit(50, "override", "user:alice"),
        ),
        # user ids may contain ':'
        (
            {},
            {("team:alice", "friends"): Override(7)},
            "team:alice",
            "friends",
            Limit(7, "override", "user:team:alice"),
        ),
    ],
)
def test_for_user(
    app_overrides: dict[str, Override],
    user_overrides: dict[tuple[str, str], Override],
    user: str,
    limit: str,
    expected: Limit,
) -> None:
    plan = pro(*HALF_YEAR, app_overrides=app_overrides, user_overrides=user_overrides)
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    assert limits.for_user(user, limit) == expected


def test_for_user_beats_an_expansion() -> None:
    plan = pro(
        *HALF_YEAR,
        expansions=(grant("groups_per_user_1000"),),
        user_overrides={("alice", "groups_per_user"): Override(100)},
    )
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    assert limits.for_user("alice", "groups_per_user") == Limit(100, "override", "user:alice")
    assert limits.for_user("bob", "groups_per_user") == Limit(
        1000, "expansion", "groups_per_user_1000"
    )


@pytest.mark.parametrize(
    ("grants", "app_overrides", "group_overrides", "group", "group_type", "expected"),
    [
        ([], {}, {}, "g1", "Private", Limit(200, "edition", "pro")),
        ([], {}, {}, "g1", "AVChatRoom", Limit(None, "edition", "pro")),
        # the group's override beats the type limit
        (
            [],
            {},
            {"g1": Override(1000)},
            "g1",
            "Private",
            Limit(1000, "override", "group:g1"),
        ),
        ([], {}, {"g1": Override(3)}, "g1", "Public", Limit(3, "override", "group:g1")),
        ([], {}, {"g1": Override(None)}, "g1", "ChatRoom", Limit(None, "override", "group:g1")),
        # ... beats an expansion and an app override
        (
            [grant("group_members_6000")],
            {},
            {"g1": Override(300)},
            "g1",
            "Private",
            Limit(300, "override", "group:g1"),
        ),
        (
            [],
            {"group_members": Override(50)},
            {"g1": Override(300)},
            "g1",
            "Private",
            Limit(300, "override", "group:g1"),
        ),
        # other groups keep their type's limit
        (
            [grant("group_members_2000")],
            {},
            {"g1": Override(300)},
            "g2",
            "Public",
            Limit(2000, "expansion", "group_members_2000"),
        ),
        (
            [],
            {"group_members": Override(50)},
            {"g1": Override(300)},
            "g2",
            "Private",
            Limit(50, "override", "app"),
        ),
        # expired: the type limit again
        (
            [],
            {},
            {"g1": Override(1000, expires_at=NOW - timedelta(seconds=1))},
            "g1",
            "Private",
            Limit(200, "edition", "pro"),
        ),
        # group ids may contain ':'
        (
            [],
            {},
            {"room:1": Override(42)},
            "room:1",
            "Public",
            Limit(42, "override", "group:room:1"),
        ),
    ],
)
def test_for_group(
    grants: list[ExpansionGrant],
    app_overrides: dict[str, Override],
    group_overrides: dict[str, Override],
    group: str,
    group_type: str,
    expected: Limit,
) -> None:
    plan = pro(
        *HALF_YEAR,
        expansions=tuple(grants),
        app_overrides=app_overrides,
        group_overrides=group_overrides,
    )
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    assert limits.for_group(group, group_type) == expected


def test_only_active_entity_overrides_are_kept() -> None:
    active = Override(5, expires_at=NOW + timedelta(days=1))
    forever = Override(6)
    expired = Override(7, expires_at=NOW - timedelta(days=1))
    plan = pro(
        *HALF_YEAR,
        user_overrides={
            ("a", "friends"): active,
            ("b", "friends"): expired,
            ("c", "friends"): forever,
        },
        group_overrides={"g1": expired, "g2": active},
    )
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    assert dict(limits.user_overrides) == {("a", "friends"): active, ("c", "friends"): forever}
    assert dict(limits.group_overrides) == {"g2": active}


# -- Limit.allows -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "count", "allowed"),
    [
        (200, 0, True),
        (200, 199, True),
        (200, 200, False),
        (200, 201, False),
        (1, 0, True),
        (1, 1, False),
        (0, 0, False),
        (None, 0, True),
        (None, 10**9, True),
    ],
)
def test_limit_allows(value: int | None, count: int, allowed: bool) -> None:
    assert Limit(value, "edition", "pro").allows(count) is allowed
    assert Limit(value, "override", "app").allows(count) is allowed


# -- lift -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "edition", "maximum", "group_type", "expected"),
    [
        ("group_members", "trial", 20, "Private", Lift("edition", "pro", 200, Decimal("999"))),
        ("group_members", "trial", 20, "ChatRoom", Lift("edition", "pro", 200, Decimal("999"))),
        (
            "group_members",
            "pro",
            200,
            "Private",
            Lift("expansion", "group_members_2000", 2000, Decimal("500")),
        ),
        (
            "group_members",
            "pro",
            2000,
            "Public",
            Lift("expansion", "group_members_6000", 6000, Decimal("1000")),
        ),
        ("group_members", "pro", 6000, "Private", None),
        ("group_members", "pro", None, "AVChatRoom", None),
        ("friends", "pro", 3000, None, None),
        ("friends", "trial", 20, None, Lift("edition", "pro", 3000, Decimal("999"))),
        ("users", "trial", 100, None, Lift("edition", "pro", None, Decimal("999"))),
        ("users", "pro", None, None, None),
        ("groups_per_user", "trial", 50, None, Lift("edition", "pro", 200, Decimal("999"))),
        (
            "groups_per_user",
            "pro",
            200,
            None,
            Lift("expansion", "groups_per_user_400", 400, Decimal("500")),
        ),
        (
            "groups_per_user",
            "pro",
            400,
            None,
            Lift("expansion", "groups_per_user_700", 700, Decimal("900")),
        ),
        (
            "groups_per_user",
            "pro",
            700,
            None,
            Lift("expansion", "groups_per_user_1000", 1000, Decimal("1100")),
        ),
        ("groups_per_user", "pro", 1000, None, None),
        ("av_chatrooms", "trial", 10, None, Lift("edition", "pro", 50, Decimal("999"))),
        (
            "av_chatrooms",
            "pro",
            50,
            None,
            Lift("expansion", "av_chatrooms_unlimited", None, Decimal("1000")),
        ),
        (
            "history_days",
            "pro",
            7,
            None,
            Lift("expansion", "history_extension", 360, Decimal("500")),
        ),
        ("history_days", "pro", 360, None, None),
    ],
)
def test_catalog_lift(
    limit: str, edition: str, maximum: int | None, group_type: str | None, expected: Lift | None
) -> None:
    assert CATALOG.lift(limit, edition, maximum, group_type) == expected


def test_effective_lift_of_edition_and_expansion_limits() -> None:
    trial = resolve(CATALOG, PlanState("trial"), NOW, SHANGHAI)
    found = trial.for_group("g1", "Private")
    assert trial.lift(CATALOG, "group_members", found, "Private") == Lift(
        "edition", "pro", 200, Decimal("999")
    )
    found = trial.app["users"]
    assert trial.lift(CATALOG, "users", found) == Lift("edition", "pro", None, Decimal("999"))

    plan = pro(*HALF_YEAR, expansions=(grant("group_members_2000"),))
    paid = resolve(CATALOG, plan, NOW, SHANGHAI)
    found = paid.for_group("g1", "Public")
    assert found == Limit(2000, "expansion", "group_members_2000")
    assert paid.lift(CATALOG, "group_members", found, "Public") == Lift(
        "expansion", "group_members_6000", 6000, Decimal("1000")
    )
    assert paid.lift(CATALOG, "friends", paid.for_user("u1", "friends")) is None


@pytest.mark.parametrize(
    ("plan", "source_id", "without_override"),
    [
        (
            PlanState("trial", app_overrides={"friends": Override(5)}),
            "app",
            Lift("edition", "pro", 3000, Decimal("999")),
        ),
        (
            PlanState("trial", user_overrides={("u1", "friends"): Override(5)}),
            "user:u1",
            Lift("edition", "pro", 3000, Decimal("999")),
        ),
        (
            pro(*HALF_YEAR, app_overrides={"groups_per_user": Override(5)}),
            "app",
            Lift("expansion", "groups_per_user_400", 400, Decimal("500")),
        ),
        (
            pro(*HALF_YEAR, user_overrides={("u1", "groups_per_user"): Override(5)}),
            "user:u1",
            Lift("expansion", "groups_per_user_400", 400, Decimal("500")),
        ),
    ],
)
def test_effective_lift_is_none_for_an_override(
    plan: PlanState, source_id: str, without_override: Lift
) -> None:
    limit = "friends" if plan.edition == "trial" else "groups_per_user"
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    found = limits.for_user("u1", limit)
    assert found == Limit(5, "override", source_id)
    assert limits.lift(CATALOG, limit, found) is None
    # the same value set by the edition would have had a way up: buying helps there
    unset = Limit(5, "edition", plan.edition)
    assert limits.lift(CATALOG, limit, unset) == without_override


@pytest.mark.parametrize(
    ("group_overrides", "app_overrides"),
    [
        ({"g1": Override(5)}, {}),
        ({}, {"group_members": Override(5)}),
    ],
)
def test_effective_lift_is_none_for_a_group_override(
    group_overrides: dict[str, Override], app_overrides: dict[str, Override]
) -> None:
    plan = PlanState("trial", app_overrides=app_overrides, group_overrides=group_overrides)
    limits = resolve(CATALOG, plan, NOW, SHANGHAI)
    found = limits.for_group("g1", "Private")
    assert found == Limit(5, "override", found.source_id)
    assert limits.lift(CATALOG, "group_members", found, "Private") is None


def test_a_group_type_the_catalog_no_longer_defines_is_a_configuration_error() -> None:
    limits = resolve(CATALOG, pro(*HALF_YEAR), NOW, SHANGHAI)

    with pytest.raises(ConfigurationError, match="group 'g1' is of type 'Club'"):
        limits.for_group("g1", "Club")
