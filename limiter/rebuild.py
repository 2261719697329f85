"""Reconcile: rebuild an app's counters from the IM's own database, and report the drift.

The authoritative state arrives as records (accounts, friendships, groups with members), in
chunks of any size. They are loaded with pipelined writes into keys beside the live ones
(same hash tag), compared with the live keys chunk by chunk by a read-only script that
returns only the count changes (memory grows with the drift, not with the app), then renamed
over the live keys by one script, which refuses if the rebuilt keys lost anything. Changes
made to the live keys while a rebuild runs are replaced by the source's state: run it from a
consistent snapshot.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from limiter.errors import InvalidRequest, StoreUnavailable
from limiter.jsontext import parse_json
from limiter.keys import AppKeys, check_entity_id
from limiter.store import Pipeline, ScriptCall

if TYPE_CHECKING:
    from limiter.core import Core, Op

# Rebuild keys left behind by a rebuild that never finished disappear after this long.
REBUILD_TTL_SECONDS = 3600
# Entries per load round trip, ids per command when loading, entries per comparing call. A
# load sorts its entries per key: Redis inserts a sorted run into a big sorted set in well under
# half the time of the same entries in random order (its skiplist path stays in cache), the
# more so the longer the run (into a set of 1,000,000: about 3.7 us of Redis CPU an entry in
# random order, 1.5 in sorted runs of 100,000).
LOAD_ENTRIES = 100_000
LOAD_BATCH = 1000
COMPARE_CHUNK = 5000
# Per-entity count changes listed in a report (the total is always given).
REPORTED_CHANGES = 1000


@dataclass(frozen=True)
class AccountRecord:
    """A registered account. ``where`` says where the source gave it (e.g. ``line 3``), so
    an error names the place; it takes no part in equality."""

    id: str
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class FriendRecord:
    """``friend`` is in ``user``'s friend list (and ``user`` in ``friend``'s when
    ``both_ways``)."""

    user: str
    friend: str
    both_ways: bool = False
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class GroupRecord:
    """A live group with its type and members. A group may come in several records (a big
    one in parts); the owner, when given, is a member."""

    id: str
    type: str
    members: tuple[str, ...] = ()
    owner: str | None = None
    where: str = field(default="", compare=False, repr=False)


Record = AccountRecord | FriendRecord | GroupRecord


@dataclass(frozen=True)
class Drift:
    """One kind of thing before and after a rebuild, and how many were added and removed."""

    before: int
    after: int
    added: int
    removed: int


CountName = Literal["friends", "groups_per_user", "group_members"]
# A subject whose count a rebuild changes: scope, id, count, by how much, the rebuilt key.
_Changed = tuple[Literal["user", "group"], str, CountName, int, str]
# The relation sets whose subjects' counts a report lists, by key name.
_COUNTS: dict[str, tuple[Literal["user", "group"], CountName]] = {
    "friends": ("user", "friends"),
    "joined": ("user", "groups_per_user"),
    "members": ("group", "group_members"),
}


@dataclass(frozen=True)
class CountChange:
    """A count the rebuild changed: a user's friends or groups, or a group's members."""

    scope: Literal["user", "group"]
    id: str
    count: CountName
    before: int
    after: int


@dataclass(frozen=True)
class ReconcileReport:
    """What a rebuild changed. ``changes`` lists the first :data:`REPORTED_CHANGES` count
    changes in id order; ``changes_total`` counts them all."""

    app: str
    accounts: Drift
    friendships: Drift
    groups: Drift
    memberships: Drift
    av_chatrooms: Drift
    groups_retyped: int
    changes: tuple[CountChange, ...]
    changes_total: int

    @property
    def truncated(self) -> bool:
        return self.changes_total > len(self.changes)

    def totals(self) -> dict[str, int]:
        """The counts after the rebuild (the audit log keeps these)."""
        return {
            "accounts": self.accounts.after,
            "friendships": self.friendships.after,
            "groups": self.groups.after,
            "memberships": self.memberships.after,
            "av_chatrooms": self.av_chatrooms.after,
        }


# -- the source's JSON forms -----------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Friendship(_Strict):
    user: StrictStr
    friend: StrictStr
    both_ways: StrictBool = False


class _Group(_Strict):
    id: StrictStr
    type: StrictStr
    owner: StrictStr | None = None
    members: list[StrictStr] = Field(default_factory=list)


class SourceDocument(_Strict):
    """The whole state as one JSON object (a small app)."""

    accounts: list[StrictStr] = Field(default_factory=list)
    friendships: list[_Friendship] = Field(default_factory=list)
    groups: list[_Group] = Field(default_factory=list)

    def records(self) -> Iterator[Record]:
        """The document's records, each knowing its place (``groups.3``)."""
        for i, account in enumerate(self.accounts):
            yield AccountRecord(account, where=f"accounts.{i}")
        for i, f in enumerate(self.friendships):
            yield FriendRecord(f.user, f.friend, f.both_ways, where=f"friendships.{i}")
        for i, g in enumerate(self.groups):
            yield GroupRecord(g.id, g.type, tuple(g.members), g.owner, where=f"groups.{i}")


class SourceLine(_Strict):
    """One line of the streamed form (NDJSON): exactly one of its fields."""

    account: StrictStr | None = None
    friendship: _Friendship | None = None
    group: _Group | None = None

    def record(self, where: str) -> Record:
        """The line's record; ``where`` names the line in errors found later."""
        given = [
            name for name in ("account", "friendship", "group") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError("give exactly one of account, friendship, group")
        if self.account is not None:
            return AccountRecord(self.account, where=where)
        if self.friendship is not None:
            f = self.friendship
            return FriendRecord(f.user, f.friend, f.both_ways, where=where)
        assert self.group is not None
        g = self.group
        return GroupRecord(g.id, g.type, tuple(g.members), g.owner, where=where)


def _invalid(exc: ValidationError, where: str) -> InvalidRequest:
    error = exc.errors()[0]
    path = ".".join(str(part) for part in error["loc"])
    field = f"{where}.{path}" if path else where
    return InvalidRequest(field, error["msg"])


def parse_document(data: object) -> Iterator[Record]:
    """The records of a JSON object ``{"accounts": [...], "friendships": [...], "groups":
    [...]}``; :class:`InvalidRequest` names the bad field (e.g. ``groups.3.type``)."""
    try:
        document = SourceDocument.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, "body") from None
    return document.records()


def parse_line(line: str | bytes, number: int) -> Record | None:
    """The record of NDJSON line ``number`` (None for a blank line); errors name the line."""
    if not line.strip():
        return None
    where = f"line {number}"
    try:
        return SourceLine.model_validate(parse_json(line, where)).record(where)
    except ValidationError as exc:
        raise _invalid(exc, where) from None
    except ValueError as exc:  # not exactly one field
        raise InvalidRequest(where, str(exc)) from None


def parse_lines(lines: Iterable[str | bytes]) -> Iterator[Record]:
    """The records of NDJSON lines (blank lines skipped); errors name the line."""
    for number, line in enumerate(lines, start=1):
        record = parse_line(line, number)
        if record is not None:
            yield record


# -- the rebuild -----------------------------------------------------------------------------


@dataclass
class _Chunk:
    """The entries one load writes, per rebuild key."""

    users: list[str] = field(default_factory=list)
    friends: list[str] = field(default_factory=list)
    friended_by: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    joined_free: list[str] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)


class Chunker:
    """Cuts a stream of records into load chunks of about :data:`LOAD_ENTRIES` entries (a big
    group counts by its members), so one round trip stays bounded whatever the records."""

    def __init__(self) -> None:
        self.chunk: list[Record] = []
        self.entries = 0

    def add(self, record: Record) -> list[Record] | None:
        """Take a record; a full chunk when it is time to load one."""
        self.chunk.append(record)
        self.entries += 1 + len(record.members) if isinstance(record, GroupRecord) else 1
        if self.entries < LOAD_ENTRIES:
            return None
        return self.rest()

    def rest(self) -> list[Record]:
        chunk, self.chunk, self.entries = self.chunk, [], 0
        return chunk


class Rebuild:
    """One reconcile of one app: ``load`` chunks, then ``finish`` (or ``abort``)."""

    def __init__(self, core: Core, app: str) -> None:
        self.core = core
        self.app = app
        self.live: AppKeys = core.keys.app(app)
        self.new: AppKeys = self.live.rebuild(secrets.token_hex(8))
        self.group_types: dict[str, str] = {}
        # Elements each rebuild key should hold, from the loads' replies: the switch checks
        # them, so rebuild keys that expired or were evicted mid-way are never switched in.
        self.sizes: Counter[str] = Counter()

    # -- loading ------------------------------------------------------------------------------

    def load(self, records: Sequence[Record]) -> Op[None]:
        """Write one chunk of records into the rebuild keys (one round trip)."""
        return self.write(self.prepare(records))

    def prepare(self, records: Sequence[Record]) -> Pipeline | None:
        """Validate one chunk of records and build the commands that load it (None: nothing
        to load); :meth:`write` sends them."""
        chunk = _Chunk()
        for record in records:
            try:
                self._take(record, chunk)
            except InvalidRequest as exc:
                where = getattr(record, "where", "")
                if not where:
                    raise
                field = f"{where}.{exc.field.rpartition('.')[2]}"
                raise InvalidRequest(field, exc.message) from None
        new = self.new
        commands: list[tuple[str | int, ...]] = []
        for key, values in ((new.users, chunk.users), (new.av_rooms, chunk.rooms)):
            for batch in _batches(values):
                commands.append(("SADD", key, *batch))
        for key, values in (
            (new.friends, chunk.friends),
            (new.friended_by, chunk.friended_by),
            (new.members, chunk.members),
            (new.joined, chunk.joined),
            (new.joined_free, chunk.joined_free),
        ):
            values.sort()
            commands += (_zadd(key, batch) for batch in _batches(values))
        for batch in _batches(list(chunk.groups.items())):
            commands.append(("HSET", new.groups, *(part for pair in batch for part in pair)))
        if not commands:
            return None
        expire = [("EXPIRE", key, REBUILD_TTL_SECONDS) for key in new.relations()]
        return Pipeline((*commands, *expire))

    def write(self, load: Pipeline | None) -> Op[None]:
        """Send a prepared load, counting what it added to each key (the switch checks it)."""
        if load is None:
            return
        self.written(load, (yield load))

    def written(self, load: Pipeline, replies: Sequence[int]) -> None:
        """Count what a sent load added to each key (from its replies)."""
        for command, added in zip(load.commands, replies, strict=True):
            if command[0] != "EXPIRE":
                self.sizes[str(command[1])] += added

    def _take(self, record: Record, chunk: _Chunk) -> None:
        """Validate one record and add its entries to ``chunk``."""
        core = self.core
        if isinstance(record, AccountRecord):
            chunk.users.append(core.check_user(record.id, "accounts"))
        elif isinstance(record, FriendRecord):
            user = core.check_user(record.user, "friendships.user")
            friend = core.check_user(record.friend, "friendships.friend")
            if not isinstance(record.both_ways, bool):
                raise InvalidRequest("friendships.both_ways", "must be true or false")
            if user == friend:
                raise InvalidRequest("friendships", f"{user!r} cannot befriend themselves")
            for a, b in [(user, friend), (friend, user)] if record.both_ways else [(user, friend)]:
                chunk.friends.append(f"{a}\0{b}")
                chunk.friended_by.append(f"{b}\0{a}")
        elif isinstance(record, GroupRecord):
            group = core.check_group(record.id, "groups.id")
            group_type = core.catalog.group_type(record.type)
            known = self.group_types.setdefault(group, group_type)
            if known != group_type:
                raise InvalidRequest(
                    "groups.type", f"group {group!r} given as {known} and as {group_type}"
                )
            if isinstance(record.members, str | bytes):
                raise InvalidRequest("groups.members", "must be a list of user ids")
            people = self._people(record)
            spec = core.catalog.group_types[group_type]
            chunk.groups[group] = group_type
            if spec.av_chatroom:
                chunk.rooms.append(group)
            side = chunk.joined if spec.counts_toward_groups_per_user else chunk.joined_free
            prefix, suffix = group + "\0", "\0" + group
            chunk.members += [prefix + person for person in people]
            side += [person + suffix for person in people]
        else:
            raise InvalidRequest("records", f"not a record: {record!r}")

    def _people(self, record: GroupRecord) -> list[str]:
        """A group's owner (when given) and members, validated together: most of a big
        source's ids are members, and one check of their concatenation (no control characters,
        valid text) plus their lengths costs a fraction of checking each. Any failure checks
        them one by one, so the error names the id."""
        people = [] if record.owner is None else [record.owner]
        people += record.members
        limit = self.core.settings.user_id_max_bytes
        try:
            joined = "".join(people)
            if joined.isascii() and min(map(len, people)) > 0 and max(map(len, people)) <= limit:
                check_entity_id(joined, "groups.members", len(joined))
                return people
        except (TypeError, ValueError, InvalidRequest):
            pass  # no one, a non-string, or a bad id: the checks below name it
        check = self.core.check_user
        owner = [] if record.owner is None else [check(record.owner, "groups.owner")]
        return owner + [check(member, "groups.members") for member in record.members]

    def abort(self) -> Op[None]:
        """Drop the rebuild keys; the live ones were never touched."""
        yield Pipeline((("DEL", *self.new.relations()),))

    # -- comparing and switching ---------------------------------------------------------------

    def finish(self, actor: str) -> Op[ReconcileReport]:
        """Compare the rebuilt state with the live one, then switch to it in one script."""
        live, new = self.live, self.new
        accounts = yield from self._diff_set(live.users, new.users)
        rooms = yield from self._diff_set(live.av_rooms, new.av_rooms)
        groups, retyped = yield from self._diff_groups()
        changed: list[_Changed] = []
        friendships = yield from self._diff_relation(live.friends, new.friends, changed)
        yield from self._diff_relation(live.joined, new.joined, changed)
        memberships = yield from self._diff_relation(live.members, new.members, changed)
        changes = yield from self._count_changes(changed)
        report = ReconcileReport(
            self.app,
            accounts,
            friendships,
            groups,
            memberships,
            rooms,
            retyped,
            changes,
            len(changed),
        )
        before = {
            "accounts": accounts.before,
            "friendships": friendships.before,
            "groups": groups.before,
            "memberships": memberships.before,
            "av_chatrooms": rooms.before,
        }
        entry = {
            "at": self.core.clock.now().isoformat(),
            "actor": actor,
            "action": "reconcile",
            "field": "counters",
            "before": before,
            "after": report.totals(),
        }
        meter, meter_args = self.core.meter_args(live)
        keys = (*live.relations(), *new.relations(), live.audit, meter)
        sizes = tuple(self.sizes[key] for key in new.relations())
        entry_json = json.dumps(entry)
        args: tuple[str | int, ...] = (
            entry_json,
            self.core.settings.audit_entries,
            *meter_args,
            *sizes,
        )
        if (yield ScriptCall("rebuild_swap", keys, args)) < 0:
            raise StoreUnavailable(
                f"reconcile of app {self.app!r}: the rebuilt data expired or was evicted "
                "before the switch; nothing changed, run it again"
            )
        self.core.stats.admin_changes["reconcile"] += 1
        return report

    def _diff_set(self, live: str, new: str) -> Op[Drift]:
        before, after = yield Pipeline((("SCARD", live), ("SCARD", new)))
        common = 0
        if before and after:
            (common,) = yield Pipeline((("SINTERCARD", 2, live, new),))
        return Drift(before, after, after - common, before - common)

    def _diff_groups(self) -> Op[tuple[Drift, int]]:
        live, new = self.live.groups, self.new.groups
        (before, after) = yield Pipeline((("HLEN", live), ("HLEN", new)))
        common = retyped = 0
        seen: set[str] = set()  # HSCAN may return a field twice while the hash is resized
        cursor: int | str = 0
        while True:
            ((cursor, page),) = yield Pipeline((("HSCAN", live, cursor, "COUNT", COMPARE_CHUNK),))
            names = [name for name in page if name not in seen]
            seen.update(names)
            if names:
                (types,) = yield Pipeline((("HMGET", new, *names),))
                for name, new_type in zip(names, types, strict=True):
                    if new_type is not None:
                        common += 1
                        retyped += new_type != page[name]
            if int(cursor) == 0:
                break
        return Drift(before, after, after - common, before - common), retyped

    def _diff_relation(self, live: str, new: str, changed: list[_Changed]) -> Op[Drift]:
        """What a relation set gains and loses, and each subject whose count changes (added
        to ``changed``): both sets are walked together in chunks by a read-only script that
        returns only counts per subject, so the work in Python grows with the drift, not the
        app."""
        before, after = yield Pipeline((("ZCARD", live), ("ZCARD", new)))
        delta: Counter[str] = Counter()
        added = removed = 0
        low = "-"
        while True:
            more, upper, chunk_added, chunk_removed, *changes = yield ScriptCall(
                "diff_chunk", (live, new), (low, COMPARE_CHUNK)
            )
            added, removed = added + chunk_added, removed + chunk_removed
            for subject, change in zip(changes[::2], changes[1::2], strict=True):
                delta[subject] += change
            if not more:
                break
            low = "(" + upper
        scope, count = _COUNTS[live.rpartition(":")[2]]
        changed += ((scope, s, count, d, new) for s, d in delta.items() if d)
        return Drift(before, after, added, removed)

    def _count_changes(self, changed: list[_Changed]) -> Op[tuple[CountChange, ...]]:
        """The first :data:`REPORTED_CHANGES` count changes in (scope, id, count) order, with
        the counts after the rebuild read from the rebuilt sets."""
        changed.sort(key=lambda change: change[:3])
        listed = changed[:REPORTED_CHANGES]
        if not listed:
            return ()
        counts = yield Pipeline(
            tuple(
                ("ZLEXCOUNT", key, f"[{subject}\0", f"({subject}\1")
                for _, subject, _, _, key in listed
            )
        )
        return tuple(
            CountChange(scope, subject, count, now - change, now)
            for (scope, subject, count, change, _), now in zip(listed, counts, strict=True)
        )


def _zadd(key: str, entries: Sequence[str]) -> tuple[str, ...]:
    """``ZADD key 0 e1 0 e2 ...`` (every relation entry scores 0: sets ordered by the entry)."""
    args = ["0"] * (2 * len(entries))
    args[1::2] = entries
    return ("ZADD", key, *args)


def _batches(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), LOAD_BATCH):
        yield values[start : start + LOAD_BATCH]


def report_as_dict(report: ReconcileReport) -> Mapping[str, Any]:
    """The report as JSON-ready values (the admin API and the console print this)."""

    def drift(d: Drift) -> dict[str, int]:
        return {"before": d.before, "after": d.after, "added": d.added, "removed": d.removed}

    return {
        "app_id": report.app,
        "accounts": drift(report.accounts),
        "friendships": drift(report.friendships),
        "groups": drift(report.groups),
        "memberships": drift(report.memberships),
        "av_chatrooms": drift(report.av_chatrooms),
        "groups_retyped": report.groups_retyped,
        "changes": [
            {
                "scope": c.scope,
                "id": c.id,
                "count": c.count,
                "before": c.before,
                "after": c.after,
            }
            for c in report.changes
        ],
        "changes_total": report.changes_total,
        "truncated": report.truncated,
    }
