"""Hostile input on every surface, table-driven (issue 6, item 4): each table crosses every
operation (or command, or field) with every hostile value, and each answer must be a clean
refusal naming the field that changed nothing, or an acceptance that stayed inside its own app.

- the engine: every id-taking operation x every hostile id, with the whole database read back
  after each call; app ids; batches over the maximum; duplicates; unknown group types;
- the key layout: one app attacking another's keys with ids that look like them;
- the example over HTTP: every id field of every command x every hostile value, broken bodies,
  sdkappid forms, duplicates;
- the admin API's bearer tokens.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import redis
import redis.cluster
from fastapi import FastAPI
from fastapi.testclient import TestClient

from limiter import (
    AsyncLimiter,
    AsyncStore,
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    Outcome,
    Refused,
)
from limiter.admin import admin_router
from limiter.testing import ManualClock, memory_async_limiter
from tests.conftest import APP, Backend, EngineFactory, Enroll, all_keys, at, is_cluster
from tests.example_support import (
    ACCOUNT_DELETE,
    ADD_MEMBERS,
    COMMANDS,
    CREATE_GROUP,
    DELETE_MEMBERS,
    DESTROY_GROUP,
    FRIEND_ADD,
    FRIEND_DELETE,
    GROUP_INFO,
    IMPORT,
    INVALID,
    MULTI_IMPORT,
    ROAM,
    SEND,
    SETTINGS,
    Im,
    members,
    peers,
    roam,
    service_of,
    serving,
)
from tests.figures import Recorder

VICTIM = "1400000002"
ATTACKER_KEYS = f"limiter:{{{APP}}}:".encode()
VICTIM_KEYS = f"limiter:{{{VICTIM}}}:".encode()
MB = 1_000_000
LONGEST_MESSAGE = 300  # an error quotes at most 64 characters of what it refuses
DATA_SET_KEYS = {b"limiter:marker"}  # the only keys outside every app: the data set's own


# -- what the database holds ---------------------------------------------------------------------

Snapshot = dict[bytes, tuple[bytes, Any, bool]]

_READERS: dict[bytes, Callable[[Any, bytes], Any]] = {
    b"string": lambda pipe, key: pipe.get(key),
    b"hash": lambda pipe, key: pipe.hgetall(key),
    b"set": lambda pipe, key: pipe.smembers(key),
    b"zset": lambda pipe, key: pipe.zrange(key, 0, -1, withscores=True),
    b"list": lambda pipe, key: pipe.lrange(key, 0, -1),
}


def snapshot(raw: redis.Redis) -> Snapshot:
    """Every key of the database as bytes: its type, its whole contents, whether it expires."""
    keys = sorted(all_keys(raw))
    with raw.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.type(key)
        types = pipe.execute()
    with raw.pipeline(transaction=False) as pipe:
        for key, kind in zip(keys, types, strict=True):
            _READERS[kind](pipe, key)
            pipe.pttl(key)
        replies = pipe.execute()
    return {
        key: (kind, contents, ttl > 0)
        for key, kind, contents, ttl in zip(keys, types, replies[::2], replies[1::2], strict=True)
    }


def changed_keys(before: Snapshot, after: Snapshot) -> set[bytes]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


@pytest.fixture
def raw(client: redis.Redis) -> Iterator[Any]:
    """A client of the backend's data that does not decode: keys and contents as bytes."""
    if is_cluster(client):
        seeds = [(n.host, n.port) for n in client.get_primaries()]
        cluster = redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in seeds]
        )
        yield cluster
        cluster.close()
        return
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    undecoded = type(client)(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    )
    yield undecoded
    undecoded.close()


# -- the hostile ids -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """A value given where an id goes, and whether a user id (1..32 bytes) and a group id
    (1..48 bytes) may be it."""

    label: str
    value: object
    user_ok: bool
    group_ok: bool

    def accepted(self, kind: Literal["user", "group"]) -> bool:
        return self.user_ok if kind == "user" else self.group_ok


def refused(label: str, value: object) -> Hostile:
    return Hostile(label, value, False, False)


def accepted(label: str, value: str) -> Hostile:
    return Hostile(label, value, True, True)


KEY_LOOKALIKES = (
    "{",
    "}",
    ":",
    "*",
    "?",
    "[",
    "\\",
    "users",
    "*:*",
    f"{{{VICTIM}}}",
    f"}}:{{{VICTIM}",
    f"limiter:{{{VICTIM}}}:users",
    "a1\\0a2",  # the relation separator spelled out (a real NUL is refused)
)

HOSTILE_IDS = (
    refused("empty", ""),
    Hostile("32 bytes", "u" * 32, True, True),
    Hostile("33 bytes", "u" * 33, False, True),
    Hostile("48 bytes", "g" * 48, False, True),
    refused("49 bytes", "g" * 49),
    Hostile("16 characters, 32 bytes", "\u00e9" * 16, True, True),
    Hostile("11 characters, 33 bytes", "\u4e2d" * 11, False, True),
    Hostile("9 emoji, 36 bytes", "\U0001f600" * 9, False, True),
    refused("17 characters, 51 bytes", "\u4e2d" * 17),
    refused("NUL", "a\x00b"),
    refused("newline", "a\nb"),
    refused("DEL", "a\x7f"),
    refused("NEL", "a\x85"),
    refused("escape sequence", "\x1b[2J"),
    refused("lone surrogate", "a\ud800"),
    refused("1 MB", "x" * MB),
    refused("int", 7),
    refused("None", None),
    refused("bytes", b"a1"),
    refused("list", ["a1"]),
    refused("float", 1.5),
    refused("bool", True),
    *(accepted(f"looks like a key: {text!r}", text) for text in KEY_LOOKALIKES),
)

_new_groups = itertools.count()


def new_group() -> str:
    return f"new{next(_new_groups)}"


@dataclass(frozen=True)
class Slot:
    """Where an operation takes an id: the hostile value goes there, the rest is valid."""

    name: str
    kind: Literal["user", "group"]
    field: str
    call: Callable[[Any, Any], object]
    optional: bool = False  # None means "not given" here (an app-wide override)
    # Accounts first: the id is related (or counted) only as a registered account, so the ids
    # this slot takes are enrolled before it, for the write to reach them.
    account: bool = False


SLOTS = (
    Slot("register_users", "user", "users", lambda e, v: e.register_users(APP, [v])),
    Slot("delete_users", "user", "users", lambda e, v: e.delete_users(APP, [v])),
    Slot(
        "add_friends user", "user", "user", lambda e, v: e.add_friends(APP, v, ["a2"]), account=True
    ),
    Slot(
        "add_friends peers",
        "user",
        "peers",
        lambda e, v: e.add_friends(APP, "a1", [v]),
        account=True,
    ),
    Slot("remove_friends user", "user", "user", lambda e, v: e.remove_friends(APP, v, ["a2"])),
    Slot("remove_friends peers", "user", "peers", lambda e, v: e.remove_friends(APP, "a1", [v])),
    Slot(
        "create_group group", "group", "group", lambda e, v: e.create_group(APP, v, "Public", "a1")
    ),
    Slot(
        "create_group owner",
        "user",
        "owner",
        lambda e, v: e.create_group(APP, new_group(), "Public", v),
        account=True,
    ),
    Slot(
        "create_group members",
        "user",
        "members",
        lambda e, v: e.create_group(APP, new_group(), "Public", "a1", [v]),
        account=True,
    ),
    Slot("add_members group", "group", "group", lambda e, v: e.add_members(APP, v, ["a2"])),
    Slot(
        "add_members users",
        "user",
        "users",
        lambda e, v: e.add_members(APP, "ga", [v]),
        account=True,
    ),
    Slot("remove_members group", "group", "group", lambda e, v: e.remove_members(APP, v, ["a2"])),
    Slot("remove_members users", "user", "users", lambda e, v: e.remove_members(APP, "ga", [v])),
    Slot("destroy_group", "group", "group", lambda e, v: e.destroy_group(APP, v)),
    Slot("record_login", "user", "user", lambda e, v: e.record_login(APP, v), account=True),
    Slot("user_usage", "user", "user", lambda e, v: e.user_usage(APP, v)),
    Slot("group_usage", "group", "group", lambda e, v: e.group_usage(APP, v)),
    Slot(
        "set_override user",
        "user",
        "user",
        lambda e, v: e.set_override(APP, "friends", 5, user=v),
        optional=True,
    ),
    Slot(
        "set_override group",
        "group",
        "group",
        lambda e, v: e.set_override(APP, "group_members", 5, group=v),
        optional=True,
    ),
    Slot(
        "clear_override user",
        "user",
        "user",
        lambda e, v: e.clear_override(APP, "friends", user=v),
        optional=True,
    ),
    Slot(
        "clear_override group",
        "group",
        "group",
        lambda e, v: e.clear_override(APP, "group_members", group=v),
        optional=True,
    ),
    Slot(
        "reserve register_users",
        "user",
        "users",
        lambda e, v: e.reserve(APP, "register_users", {"users": [v]}),
    ),
    Slot(
        "reserve add_friends",
        "user",
        "user",
        lambda e, v: e.reserve(APP, "add_friends", {"user": v, "peers": ["a2"]}),
        account=True,
    ),
)


def populate_victim(engine: Any) -> None:
    """App VICTIM with every kind of key, holding ids the attacker will also use."""
    engine.set_edition(VICTIM, "pro", purchased_on=date(2026, 11, 20))
    engine.add_expansion(VICTIM, "group_members_2000", purchased_on=date(2026, 11, 21))
    people = ["a1", "a2", "b1", *KEY_LOOKALIKES]
    engine.register_users(VICTIM, people)
    engine.add_friends(VICTIM, "a1", ["a2", "b1", "{", "}"])
    engine.create_group(VICTIM, "ga", "Public", "a1", ["a2", "users"])
    engine.create_group(VICTIM, "{", "AVChatRoom", "b1", ["*"])
    engine.set_override(VICTIM, "friends", 7, user="a1")
    engine.set_override(VICTIM, "group_members", 9, group="ga")
    for user in ("a1", "b1", "}"):
        engine.record_login(VICTIM, user)
    engine.record_bandwidth(VICTIM, "3.5")


def populate_attacker(engine: Any) -> None:
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20))
    engine.register_users(APP, ["a1", "a2"])
    engine.create_group(APP, "ga", "Public", "a1", ["a2"])


def attempt(call: Callable[[], object]) -> InvalidRequest | None:
    """The operation's refusal of its input, or None when it took it (a missing or existing
    group and a limit are answers about the data, not the input)."""
    try:
        call()
    except InvalidRequest as exc:
        return exc
    except (GroupNotFound, GroupExists, Refused):
        pass
    return None


def refusal_problems(
    what: str, refusals: list[tuple[str, InvalidRequest | None]], field: str, changed: set[bytes]
) -> list[str]:
    """Each input refused naming ``field`` without quoting it whole, and nothing changed."""
    problems = [f"{what} <- {label}: accepted" for label, found in refusals if found is None]
    problems += [
        f"{what} <- {label}: refused as {found.field!r}: {str(found)[:LONGEST_MESSAGE]}"
        for label, found in refusals
        if found is not None and (found.field != field or len(str(found)) > LONGEST_MESSAGE)
    ]
    if changed:
        problems.append(f"{what}: a refused input changed {sorted(changed)}")
    return problems


def acceptance_problems(
    what: str, refusals: list[tuple[str, InvalidRequest | None]], changed: set[bytes]
) -> list[str]:
    """Each input taken, and only the attacker's keys changed."""
    problems = [f"{what} <- {label}: {found}" for label, found in refusals if found is not None]
    strays = sorted(key for key in changed if not key.startswith(ATTACKER_KEYS))
    if strays:
        problems.append(f"{what}: wrote outside its app: {strays}")
    return problems


# -- the engine ------------------------------------------------------------------------------------


def test_every_id_slot_refuses_or_contains_every_hostile_id(
    engine: Any, raw: redis.Redis, enroll: Enroll, figures: Recorder
) -> None:
    populate_victim(engine)
    populate_attacker(engine)
    victim = {key: value for key, value in snapshot(raw).items() if key.startswith(VICTIM_KEYS)}
    before = snapshot(raw)
    problems: list[str] = []
    tried = 0
    for slot in SLOTS:
        for must_refuse in (True, False):
            values = [
                hostile
                for hostile in HOSTILE_IDS
                if hostile.accepted(slot.kind) is not must_refuse
                and not (hostile.value is None and slot.optional)
            ]
            if slot.account and not must_refuse:
                enroll(APP, *(hostile.value for hostile in values))
            refusals = [(h.label, attempt(partial(slot.call, engine, h.value))) for h in values]
            after = snapshot(raw)
            changed = changed_keys(before, after)
            if must_refuse:
                problems += refusal_problems(slot.name, refusals, slot.field, changed)
            else:
                problems += acceptance_problems(slot.name, refusals, changed)
            before, tried = after, tried + len(values)
    figures.record("hostile", "engine: hostile ids tried (operation x id)", tried)

    assert problems == [], "\n".join(problems)
    assert {key: value for key, value in before.items() if key.startswith(VICTIM_KEYS)} == victim


def test_one_app_cannot_reach_another_apps_keys(
    engine: Any, raw: redis.Redis, figures: Recorder
) -> None:
    populate_victim(engine)
    victim = {key: value for key, value in snapshot(raw).items() if key.startswith(VICTIM_KEYS)}
    lookalikes = list(KEY_LOOKALIKES)
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 20))
    engine.register_users(APP, ["a1", "a2", *lookalikes])
    engine.add_friends(APP, "a1", lookalikes)
    engine.add_friends(APP, "}", ["{", "users"], both_ways=False)
    for group in ("ga", "{", f"{{{VICTIM}}}", "*"):
        engine.create_group(APP, group, "Public", "a1", lookalikes[:5])
    engine.add_members(APP, "ga", lookalikes)
    for user in lookalikes:
        engine.set_override(APP, "friends", 1, user=user)
        engine.record_login(APP, user)
    engine.set_override(APP, "group_members", 1, group="{")
    engine.remove_members(APP, "{", ["a1", "*"])
    engine.remove_friends(APP, "a1", ["{", "}"])
    engine.destroy_group(APP, "ga")
    engine.clear_override(APP, "friends", user="a1")
    engine.delete_users(APP, ["a1", "a2", "users"])

    after = snapshot(raw)

    assert {key: value for key, value in after.items() if key.startswith(VICTIM_KEYS)} == victim
    outside = {key for key in after if not key.startswith((VICTIM_KEYS, ATTACKER_KEYS))}
    assert outside <= DATA_SET_KEYS
    users = after[ATTACKER_KEYS + b"users"][1]
    assert users == {user.encode() for user in lookalikes if user != "users"}
    # The attacker's reads see its own data only.
    assert engine.user_usage(APP, "b1").registered is False
    assert engine.group_usage(APP, "ga") is None
    assert (engine.usage(VICTIM).users, engine.usage(VICTIM).groups) == (3 + len(lookalikes), 2)
    assert {item.id for item in engine.over_limit(APP)} <= {*lookalikes, "a1", "a2", APP}
    figures.record("hostile", "key layout: operations with lookalike ids", 14 + 3 * len(lookalikes))


HOSTILE_APPS = (
    "",
    "{",
    "}",
    ":",
    "*",
    "?",
    "[",
    f"{{{VICTIM}}}",
    f"{APP}}}",
    f"{APP}:users",
    f"{APP}*",
    "a b",
    f"{APP}\n",
    "\uff11\uff14",  # full-width digits
    "x" * 65,
    "x" * MB,
    None,
    int(APP),
    APP.encode(),
)

APP_OPERATIONS: tuple[tuple[str, Callable[[Any, Any], object]], ...] = (
    ("register_users", lambda e, a: e.register_users(a, ["u"])),
    ("delete_users", lambda e, a: e.delete_users(a, ["u"])),
    ("add_friends", lambda e, a: e.add_friends(a, "u", ["v"])),
    ("remove_friends", lambda e, a: e.remove_friends(a, "u", ["v"])),
    ("create_group", lambda e, a: e.create_group(a, "g", "Public", "u")),
    ("add_members", lambda e, a: e.add_members(a, "g", ["u"])),
    ("remove_members", lambda e, a: e.remove_members(a, "g", ["u"])),
    ("destroy_group", lambda e, a: e.destroy_group(a, "g")),
    ("reserve", lambda e, a: e.reserve(a, "register_users", {"users": ["u"]})),
    ("set_edition", lambda e, a: e.set_edition(a, "pro", purchased_on=date(2026, 11, 20))),
    ("renew", lambda e, a: e.renew(a)),
    (
        "add_expansion",
        lambda e, a: e.add_expansion(a, "av_chatrooms_unlimited", date(2026, 11, 20)),
    ),
    ("remove_expansion", lambda e, a: e.remove_expansion(a, "x1")),
    ("set_override", lambda e, a: e.set_override(a, "users", 5)),
    ("clear_override", lambda e, a: e.clear_override(a, "users")),
    ("record_login", lambda e, a: e.record_login(a, "u")),
    ("record_bandwidth", lambda e, a: e.record_bandwidth(a, 1)),
    ("monthly_usage", lambda e, a: e.monthly_usage(a, "2026-11")),
    ("bill", lambda e, a: e.bill(a, "2026-11")),
    ("history_cutoff", lambda e, a: e.history_cutoff(a)),
    ("clamp_history", lambda e, a: e.clamp_history(a, at(2026, 11, 1))),
    ("audit", lambda e, a: e.audit(a)),
    ("over_limit", lambda e, a: e.over_limit(a)),
    ("plan", lambda e, a: e.plan(a)),
    ("limits", lambda e, a: e.limits(a)),
    ("usage", lambda e, a: e.usage(a)),
    ("user_usage", lambda e, a: e.user_usage(a, "u")),
    ("group_usage", lambda e, a: e.group_usage(a, "g")),
    ("reconcile", lambda e, a: e.reconcile(a, [])),
)


def test_every_operation_refuses_an_app_id_that_is_not_one(
    engine: Any, raw: redis.Redis, figures: Recorder
) -> None:
    populate_victim(engine)
    before = snapshot(raw)
    problems: list[str] = []
    for name, call in APP_OPERATIONS:
        refusals = [(repr(app)[:20], attempt(partial(call, engine, app))) for app in HOSTILE_APPS]
        problems += refusal_problems(name, refusals, "app", set())
    figures.record(
        "hostile", "engine: hostile app ids tried", len(APP_OPERATIONS) * len(HOSTILE_APPS)
    )

    assert problems == [], "\n".join(problems)
    assert snapshot(raw) == before


BATCHES: tuple[tuple[str, str, Callable[[Any, list[str]], object]], ...] = (
    ("register_users", "users", lambda e, ids: e.register_users(APP, ids)),
    ("delete_users", "users", lambda e, ids: e.delete_users(APP, ids)),
    ("add_friends", "peers", lambda e, ids: e.add_friends(APP, "a1", ids)),
    ("remove_friends", "peers", lambda e, ids: e.remove_friends(APP, "a1", ids)),
    ("create_group", "members", lambda e, ids: e.create_group(APP, "g2", "Public", "a1", ids)),
    ("add_members", "users", lambda e, ids: e.add_members(APP, "ga", ids)),
    ("remove_members", "users", lambda e, ids: e.remove_members(APP, "ga", ids)),
    (
        "reserve",
        "users",
        lambda e, ids: e.reserve(APP, "add_members", {"group": "ga", "users": ids}),
    ),
)


def test_a_batch_over_the_maximum_is_refused_whole(
    make_engine: EngineFactory, raw: redis.Redis, enroll: Enroll, figures: Recorder
) -> None:
    engine = make_engine(max_batch=5)
    populate_attacker(engine)
    problems: list[str] = []
    for name, field, call in BATCHES:
        if name != "register_users":  # that one registers them; delete_users deletes them
            enroll(APP, *(f"n{i}" for i in range(5)))  # accounts first: related only as accounts
        before = snapshot(raw)
        over = [
            ("6 ids", attempt(partial(call, engine, [f"n{i}" for i in range(6)]))),
            ("one id 6 times", attempt(partial(call, engine, ["n0"] * 6))),
        ]
        problems += refusal_problems(name, over, field, changed_keys(before, snapshot(raw)))
        at_most = attempt(partial(call, engine, [f"n{i}" for i in range(5)]))
        problems += acceptance_problems(name, [("5 ids", at_most)], set())
    figures.record("hostile", "engine: batches at and over the maximum", 3 * len(BATCHES))

    assert problems == [], "\n".join(problems)


def test_duplicates_in_a_batch_count_once_and_answer_once(engine: Any, figures: Recorder) -> None:
    populate_attacker(engine)
    twice = ["d1", "d2", "d1", "d2", "d1"]
    engine.register_users(APP, ["d1", "d2"])
    answers = {
        "register_users": engine.register_users(APP, ["d3", "d3", "a1", "d3"]),
        "add_friends": engine.add_friends(APP, "a1", twice),
        "add_members": engine.add_members(APP, "ga", twice),
        "remove_members": engine.remove_members(APP, "ga", ["d1", "d1"]),
        "remove_friends": engine.remove_friends(APP, "a1", ["d2", "d2"]),
    }
    created = engine.create_group(APP, "g2", "Public", "a1", ["a1", "d1", "d1", "a1"])
    deleted = engine.delete_users(APP, ["d3", "d3"])

    ids = {name: [item.id for item in answer.items] for name, answer in answers.items()}
    assert ids == {
        "register_users": ["d3", "a1"],
        "add_friends": ["d1", "d2"],
        "add_members": ["d1", "d2"],
        "remove_members": ["d1"],
        "remove_friends": ["d2"],
    }
    assert [item.outcome for item in answers["register_users"].items] == [
        Outcome.ADDED,
        Outcome.ALREADY,
    ]
    assert answers["add_members"].size == 4  # a1, a2, d1, d2
    assert engine.group_usage(APP, "ga").members == 3  # d1 removed once
    assert created.members == 2  # the owner once, d1 once
    assert [user.id for user in deleted.users] == ["d3"]
    assert engine.user_usage(APP, "a1").friends == 1  # d1 stays, d2 removed
    assert engine.usage(APP).users == 4  # a1, a2, d1, d2
    figures.record("hostile", "engine: batches with duplicates", len(answers) + 2)


GROUP_TYPES: tuple[tuple[object, str | None], ...] = (
    ("Public", "Public"),
    ("Work", "Private"),
    ("Meeting", "ChatRoom"),
    ("AVChatRoom", "AVChatRoom"),
    ("Club", None),
    ("", None),
    ("public", None),
    ("Public ", None),
    (" Public", None),
    ("Public\x00", None),
    ("Community", None),
    (None, None),
    (7, None),
    (["Public"], None),
    (b"Public", None),
)


def test_a_group_type_is_a_known_name_or_refused(
    engine: Any, raw: redis.Redis, figures: Recorder
) -> None:
    populate_attacker(engine)
    problems: list[str] = []
    for number, (given, canonical) in enumerate(GROUP_TYPES):
        before = snapshot(raw)
        found = attempt(partial(engine.create_group, APP, f"t{number}", given, "a1"))
        if canonical is None:
            problems += refusal_problems(
                repr(given)[:20], [("type", found)], "type", changed_keys(before, snapshot(raw))
            )
        elif found is not None or engine.group_usage(APP, f"t{number}").type != canonical:
            problems.append(f"{given!r}: not created as {canonical}: {found}")
    figures.record("hostile", "engine: group types tried", len(GROUP_TYPES))

    assert problems == [], "\n".join(problems)


def test_an_unknown_group_type_is_not_quoted_whole(engine: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        engine.create_group(APP, "g", "x" * MB, "a1")

    assert caught.value.field == "type"
    assert len(str(caught.value)) <= LONGEST_MESSAGE


# -- the example over HTTP -------------------------------------------------------------------------

PLACEHOLDER = "@hostile@"


@pytest.fixture
def im(backend: Backend, clock: ManualClock, tmp_path: Path) -> Iterator[Im]:
    engine = AsyncLimiter(AsyncStore(backend.async_client()), settings=SETTINGS, clock=clock)
    with serving(engine, tmp_path / "im.sqlite3", clock) as running:
        yield running


@dataclass(frozen=True)
class Field:
    """An id field of a command: ``body(value)`` is a valid body with ``value`` there."""

    command: str
    path: str  # as the answer names it
    kind: Literal["user", "group"]
    body: Callable[[Any], dict[str, Any]]
    optional: bool = False  # null means "not given" (a generated GroupId)


FIELDS = (
    Field(IMPORT, "UserID", "user", lambda v: {"UserID": v}),
    Field(MULTI_IMPORT, "Accounts.0", "user", lambda v: {"Accounts": [v]}),
    Field(ACCOUNT_DELETE, "DeleteItem.0.UserID", "user", lambda v: {"DeleteItem": [{"UserID": v}]}),
    Field(
        FRIEND_ADD,
        "From_Account",
        "user",
        lambda v: {"From_Account": v, "AddFriendItem": peers("a2")},
    ),
    Field(
        FRIEND_ADD,
        "AddFriendItem.0.To_Account",
        "user",
        lambda v: {"From_Account": "a1", "AddFriendItem": peers(v)},
    ),
    Field(
        FRIEND_DELETE, "From_Account", "user", lambda v: {"From_Account": v, "To_Account": ["a2"]}
    ),
    Field(
        FRIEND_DELETE, "To_Account.0", "user", lambda v: {"From_Account": "a1", "To_Account": [v]}
    ),
    Field(
        CREATE_GROUP,
        "Owner_Account",
        "user",
        lambda v: {"Owner_Account": v, "Type": "Public", "Name": "n"},
    ),
    Field(
        CREATE_GROUP,
        "GroupId",
        "group",
        lambda v: {"Owner_Account": "a1", "Type": "Public", "Name": "n", "GroupId": v},
        optional=True,
    ),
    Field(
        CREATE_GROUP,
        "MemberList.0.Member_Account",
        "user",
        lambda v: {"Owner_Account": "a1", "Type": "Public", "Name": "n", "MemberList": members(v)},
    ),
    Field(ADD_MEMBERS, "GroupId", "group", lambda v: {"GroupId": v, "MemberList": members("a2")}),
    Field(
        ADD_MEMBERS,
        "MemberList.0.Member_Account",
        "user",
        lambda v: {"GroupId": "ga", "MemberList": members(v)},
    ),
    Field(
        DELETE_MEMBERS,
        "GroupId",
        "group",
        lambda v: {"GroupId": v, "MemberToDel_Account": ["a2"]},
    ),
    Field(
        DELETE_MEMBERS,
        "MemberToDel_Account.0",
        "user",
        lambda v: {"GroupId": "ga", "MemberToDel_Account": [v]},
    ),
    Field(DESTROY_GROUP, "GroupId", "group", lambda v: {"GroupId": v}),
    Field(GROUP_INFO, "GroupIdList.0", "group", lambda v: {"GroupIdList": [v]}),
    Field(
        SEND,
        "From_Account",
        "user",
        lambda v: {"From_Account": v, "To_Account": "a2", "MsgRandom": 1, "MsgBody": TEXT},
    ),
    Field(
        SEND,
        "To_Account",
        "user",
        lambda v: {"From_Account": "a1", "To_Account": v, "MsgRandom": 1, "MsgBody": TEXT},
    ),
    Field(ROAM, "Operator_Account", "user", lambda v: roam(v, "a2")),
    Field(ROAM, "Peer_Account", "user", lambda v: roam("a1", v)),
)
TEXT = [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "hi"}}]


@dataclass(frozen=True)
class Token:
    """JSON text put where an id goes; refused naming the field (or, for text the parser
    cannot take, the body), or accepted like :class:`Hostile`."""

    label: str
    text: bytes
    user_ok: bool
    group_ok: bool
    named: Literal["field", "body"] = "field"

    def accepted(self, kind: Literal["user", "group"]) -> bool:
        return self.user_ok if kind == "user" else self.group_ok


TOKENS = (
    *(
        Token(h.label, json.dumps(h.value).encode(), h.user_ok, h.group_ok)
        for h in HOSTILE_IDS
        if not isinstance(h.value, bytes)
    ),
    Token("object", b'{"UserID": "a1"}', False, False),
    Token("1e999", b"1e999", False, False),
    Token("NaN", b"NaN", False, False),
    Token("10**30", b"1" + b"0" * 30, False, False),
    Token("escaped lone low surrogate", b'"a\\udc00"', False, False),
    Token("5000 digits", b"1" + b"0" * 5000, False, False, "body"),
    Token("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, False, False, "body"),
    Token("not UTF-8", b'"\xff\xfe"', False, False, "body"),
)


def hostile_body(field: Field, token: Token) -> bytes:
    template = json.dumps(field.body(PLACEHOLDER)).encode()
    return template.replace(json.dumps(PLACEHOLDER).encode(), token.text)


def everything(im: Im, raw: redis.Redis) -> tuple[Any, ...]:
    """Both apps' rows in SQLite (messages too) and every key in the store."""
    messages = im.rows("SELECT app, from_account, to_account FROM messages")
    return im.tables(APP), im.tables(VICTIM), messages, snapshot(raw)


def populate_apps(im: Im) -> None:
    """The victim, through its own sdkappid, and the attacker's valid ids: a1, a2, group ga."""
    people = ["a1", "a2", "b1", *KEY_LOOKALIKES]
    victim = f"sdkappid={VICTIM}"
    assert im.call(MULTI_IMPORT, {"Accounts": people}, query=victim)["FailAccounts"] == []
    body = {"Owner_Account": "a1", "Type": "Public", "GroupId": "ga", "Name": "ga"}
    assert (
        im.call(CREATE_GROUP, {**body, "MemberList": members("{", "*")}, query=victim)[
            "ActionStatus"
        ]
        == "OK"
    )
    im.call(FRIEND_ADD, {"From_Account": "a1", "AddFriendItem": peers("a2", "}")}, query=victim)
    im.import_users("a1", "a2")
    im.create_group("a1", "a2", group="ga")


def im_refusal_problems(
    what: str, answers: list[tuple[str, httpx.Response]], code: int, named: list[str]
) -> list[str]:
    """Each answer an IM-shaped FAIL (HTTP 200) with ``code``, naming what it was told, short."""
    problems = []
    for (label, answer), name in zip(answers, named, strict=True):
        body = answer.json() if answer.status_code < 500 else {}
        found = (answer.status_code, body.get("ActionStatus"), body.get("ErrorCode"))
        info = str(body.get("ErrorInfo", answer.text))
        if found != (200, "FAIL", code) or not info.startswith(name):
            problems.append(f"{what} <- {label}: {found} {info[:200]}")
        elif len(info) > LONGEST_MESSAGE:
            problems.append(f"{what} <- {label}: ErrorInfo of {len(info)} characters")
    return problems


def im_acceptance_problems(what: str, answers: list[tuple[str, httpx.Response]]) -> list[str]:
    """Each answer HTTP 200 in the IM's shape (OK, or FAIL for what the data refuses)."""
    return [
        f"{what} <- {label}: {answer.status_code} {answer.text[:200]}"
        for label, answer in answers
        if answer.status_code != 200 or answer.json().get("ActionStatus") not in ("OK", "FAIL")
    ]


def stray_problems(what: str, before: tuple[Any, ...], after: tuple[Any, ...]) -> list[str]:
    """The victim's rows and keys unchanged, every changed key the attacker's."""
    problems = []
    if after[1] != before[1]:
        problems.append(f"{what}: the victim's SQLite rows changed")
    strays = [k for k in changed_keys(before[3], after[3]) if not k.startswith(ATTACKER_KEYS)]
    if strays:
        problems.append(f"{what}: keys changed outside its app: {strays}")
    return problems


def test_every_id_field_of_every_command_refuses_or_contains_every_hostile_value(
    im: Im, raw: redis.Redis, figures: Recorder
) -> None:
    populate_apps(im)
    before = everything(im, raw)
    problems: list[str] = []
    tried = 0
    for field, must_refuse in itertools.product(FIELDS, (True, False)):
        tokens = [
            token
            for token in TOKENS
            if token.accepted(field.kind) is not must_refuse
            and not (token.text == b"null" and field.optional)
        ]
        answers = [(t.label, im.post(field.command, hostile_body(field, t))) for t in tokens]
        after = everything(im, raw)
        what = f"{field.command} {field.path}"
        if must_refuse:
            code = INVALID[service_of(field.command)]
            named = [f"{field.path}: " if t.named == "field" else "body: " for t in tokens]
            problems += im_refusal_problems(what, answers, code, named)
            if after != before:
                problems.append(f"{what}: a refused request changed something")
        else:
            problems += im_acceptance_problems(what, answers)
            problems += stray_problems(what, before, after)
        before, tried = after, tried + len(tokens)
    figures.record("hostile", "example: id fields x hostile values (requests)", tried)

    assert problems == [], "\n".join(problems)


BROKEN_BODIES = (
    ("empty", b""),
    ("not JSON", b"UserID=a1"),
    ("truncated", b'{"UserID": "a'),
    ("only an opening brace", b"{"),
    ("an array", b'["a1"]'),
    ("a string", b'"a1"'),
    ("null", b"null"),
    ("a number", b"1e999"),
    ("nested 10,000 deep", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    ("not UTF-8", b'{"UserID": "\xff"}'),
    ("a 5000-digit number", b'{"MsgRandom": 1' + b"0" * 5000 + b"}"),
    ("trailing garbage", b'{"UserID": "a1"} x'),
)


def test_every_command_refuses_a_broken_body_in_the_im_shape(
    im: Im, raw: redis.Redis, figures: Recorder
) -> None:
    populate_apps(im)
    before = everything(im, raw)
    problems: list[str] = []
    for command in COMMANDS:
        answers = [(label, im.post(command, body)) for label, body in BROKEN_BODIES]
        named = ["body: "] * len(answers)
        problems += im_refusal_problems(command, answers, INVALID[service_of(command)], named)
    figures.record(
        "hostile", "example: broken bodies (requests)", len(COMMANDS) * len(BROKEN_BODIES)
    )

    assert problems == [], "\n".join(problems)
    assert everything(im, raw) == before


def test_every_command_answers_other_methods_and_near_names_in_the_im_shape(
    im: Im, figures: Recorder
) -> None:
    problems = []
    for command, method in itertools.product(COMMANDS, ("GET", "PUT", "DELETE", "PATCH")):
        answer = im.http.request(method, f"/v4/{command}?sdkappid={APP}")
        expected = (405, "POST", "FAIL", INVALID[service_of(command)])
        body = answer.json()
        found = (
            answer.status_code,
            answer.headers.get("allow"),
            body["ActionStatus"],
            body["ErrorCode"],
        )
        if found != expected:
            problems.append(f"{method} {command}: {found}")
    for command in {f"{service_of(c)}/{c.split('/')[1]}x" for c in COMMANDS}:
        body = im.call(command, {"UserID": "a1"})
        if (body["ErrorCode"], body["ErrorInfo"]) != (
            INVALID[service_of(command)],
            f"unknown command /v4/{command}",
        ):
            problems.append(f"{command}: {body}")
    figures.record("hostile", "example: wrong methods and unknown commands", 5 * len(COMMANDS))

    assert problems == [], "\n".join(problems)
    assert im.accounts() == set()


APP_QUERIES = (
    "",
    "sdkappid=",
    "sdkappid={x}",
    f"sdkappid=%7B{VICTIM}%7D",
    f"sdkappid={APP}%0A",
    f"sdkappid={APP}%00",
    f"sdkappid={APP}:users",
    "sdkappid=*",
    "sdkappid=" + "1" * 65,
    f"SdkAppid={APP}",
    f"sdkappid={APP}&sdkappid={VICTIM}",
    f"sdkappid={VICTIM}&sdkappid={APP}",
    f"sdkappid={APP}&sdkappid={APP}",
    f"sdkappid=&sdkappid={APP}",
)


def test_a_request_must_name_exactly_one_valid_app(
    im: Im, raw: redis.Redis, figures: Recorder
) -> None:
    populate_apps(im)
    first_of_each = {field.command: field for field in reversed(FIELDS)}
    before = everything(im, raw)
    problems: list[str] = []
    for field in first_of_each.values():
        body = json.dumps(field.body("a1")).encode()
        answers = [(query, im.post(field.command, body, query=query)) for query in APP_QUERIES]
        named = ["" for _ in answers]
        code = INVALID[service_of(field.command)]
        problems += im_refusal_problems(field.command, answers, code, named)
        problems += [
            f"{field.command} <- {query}: does not name sdkappid"
            for query, answer in answers
            if "sdkappid" not in answer.json()["ErrorInfo"].lower()
        ]
    figures.record(
        "hostile", "example: sdkappid forms (requests)", len(first_of_each) * len(APP_QUERIES)
    )

    assert problems == [], "\n".join(problems)
    assert everything(im, raw) == before


def test_the_query_names_the_app_whatever_a_header_says(im: Im, raw: redis.Redis) -> None:
    populate_apps(im)
    victim = everything(im, raw)[1]

    answer = im.call(MULTI_IMPORT, {"Accounts": ["h1"]}, headers={"X-App-Id": VICTIM})

    assert answer["FailAccounts"] == []
    assert "h1" in im.accounts() and im.user("h1") == (True, 0, 0)
    assert everything(im, raw)[1] == victim
    assert im.user("h1", app=VICTIM) == (False, 0, 0)


def test_duplicates_in_one_request_count_once_and_answer_once(im: Im, figures: Recorder) -> None:
    im.import_users("a1", "a2", "a3")
    twice = ["a2", "a3", "a2", "a3"]
    group = {"Owner_Account": "a1", "Type": "Public", "GroupId": "g", "Name": "g"}

    created = im.call(CREATE_GROUP, {**group, "MemberList": members("a1", "a2", "a2")})
    added = im.call(ADD_MEMBERS, {"GroupId": "g", "MemberList": members(*twice)})
    friends = im.call(FRIEND_ADD, {"From_Account": "a1", "AddFriendItem": peers(*twice)})
    info = im.call(GROUP_INFO, {"GroupIdList": ["g", "g"]})
    removed = im.call(DELETE_MEMBERS, {"GroupId": "g", "MemberToDel_Account": ["a3", "a3"]})
    unfriended = im.call(FRIEND_DELETE, {"From_Account": "a1", "To_Account": ["a3", "a3"]})
    deleted = im.call(ACCOUNT_DELETE, {"DeleteItem": [{"UserID": "a3"}, {"UserID": "a3"}]})

    assert created["GroupId"] == "g" and removed["ActionStatus"] == "OK"
    assert [(m["Member_Account"], m["Result"]) for m in added["MemberList"]] == [
        ("a2", 2),
        ("a3", 1),
    ]
    assert [(r["To_Account"], r["ResultCode"]) for r in friends["ResultItem"]] == [
        ("a2", 0),
        ("a3", 0),
    ]
    assert [(g["GroupId"], g["MemberNum"]) for g in info["GroupInfo"]] == [("g", 3)]
    assert [(r["To_Account"], r["ResultCode"]) for r in unfriended["ResultItem"]] == [("a3", 0)]
    assert [(r["UserID"], r["ResultCode"]) for r in deleted["ResultItem"]] == [("a3", 0)]
    assert im.members_of("g") == {"a1", "a2"} and im.group("g").members == 2
    assert im.user("a1") == (True, 1, 1) and im.accounts() == {"a1", "a2"}
    figures.record("hostile", "example: requests with duplicate ids", 7)


# -- the admin API's tokens ------------------------------------------------------------------------

ADMIN_TOKEN = "ops-token-0123456789abcdef"
ADMIN_PATH = f"/admin/apps/{APP}"
RIGHT = ("authorization", f"Bearer {ADMIN_TOKEN}")
WRONG = ("authorization", "Bearer wrong-token-0123456789ab")


@pytest.fixture(scope="module")
def admin() -> Iterator[TestClient]:
    app = FastAPI()
    app.state.limiter = memory_async_limiter()
    app.include_router(admin_router(tokens={"ops": ADMIN_TOKEN}), prefix="/admin")
    with TestClient(app) as client:
        yield client


REFUSED_CREDENTIALS = (
    pytest.param([], id="no header"),
    pytest.param([("authorization", "")], id="empty header"),
    pytest.param([("authorization", "Bearer")], id="scheme alone"),
    pytest.param([("authorization", "Bearer ")], id="empty token"),
    pytest.param([WRONG], id="wrong"),
    pytest.param([("authorization", f"Bearer {ADMIN_TOKEN[:-1]}")], id="prefix"),
    pytest.param([("authorization", f"Bearer {ADMIN_TOKEN[:8]}")], id="short prefix"),
    pytest.param([("authorization", f"Bearer {ADMIN_TOKEN}x")], id="longer"),
    pytest.param([("authorization", f"Bearer {ADMIN_TOKEN.upper()}")], id="other case"),
    pytest.param([("authorization", f"Bearer {ADMIN_TOKEN}\x00")], id="NUL after"),
    pytest.param([("authorization", f"Basic {ADMIN_TOKEN}")], id="Basic"),
    pytest.param([("authorization", ADMIN_TOKEN)], id="no scheme"),
    pytest.param([("x-authorization", f"Bearer {ADMIN_TOKEN}")], id="other header"),
    pytest.param(
        [
            ("authorization", "Bearer wrong-token-0123456789ab"),
            ("authorization", f"Bearer {ADMIN_TOKEN}"),
        ],
        id="two headers, the right one second",
    ),
    pytest.param(
        [
            ("authorization", f"Bearer {ADMIN_TOKEN}"),
            ("authorization", "Bearer wrong-token-0123456789ab"),
        ],
        id="two headers, the right one first",
    ),
    pytest.param(
        [("authorization", f"Bearer {ADMIN_TOKEN} ")],
        id="trailing space",
    ),
    pytest.param(
        [("authorization", f"Bearer {ADMIN_TOKEN}\n")],
        id="trailing newline",
    ),
)


@pytest.mark.parametrize("headers", REFUSED_CREDENTIALS)
def test_only_the_exact_token_opens_the_admin_api(
    admin: TestClient, headers: list[tuple[str, str]], figures: Recorder
) -> None:
    answers = [
        admin.request(method, f"{ADMIN_PATH}{path}", headers=headers, json=body)
        for method, path, body in (
            ("GET", "", None),
            ("PUT", "/overrides/users", {"value": 1}),
            ("PUT", "/edition", {"edition": 7}),
        )
    ]
    figures.record("hostile", "admin: refused credentials x requests", len(answers))

    # Every refusal is the same answer: nothing tells which part of a guess was right.
    assert {answer_shape(answer) for answer in answers} == {REFUSAL}
    assert (
        admin.get(ADMIN_PATH, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()[
            "overrides"
        ]
        == []
    )


def answer_shape(answer: httpx.Response) -> tuple[Any, ...]:
    return (
        answer.status_code,
        answer.headers.get("www-authenticate"),
        answer.headers["content-type"],
        answer.content,
    )


REFUSAL = (
    401,
    "Bearer",
    "application/problem+json",
    b'{"type":"about:blank","title":"Unauthorized","status":401,'
    b'"detail":"give a valid admin token: Authorization: Bearer <token>"}',
)
