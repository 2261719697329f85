"""The rebuild of a reconcile: the source's records validated and loaded in chunks beside the
live keys, compared with them chunk by chunk by a read-only script that returns only the count
changes (memory grows with the drift, not with the app), then switched in by one script, which
refuses if the rebuilt keys lost anything. Changes made to the live keys while a rebuild runs
are replaced by the source's state: run it from a consistent snapshot.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from typing import Literal

from limiter.errors import InvalidRequest, StoreUnavailable
from limiter.ids import check_entity_id
from limiter.ops.context import Context, Op
from limiter.reconcile.records import AccountRecord, FriendRecord, GroupRecord, Record
from limiter.reconcile.report import (
    REPORTED_CHANGES,
    CountChange,
    CountName,
    Drift,
    ReconcileReport,
)
from limiter.store import audit, loads, reads, scripts
from limiter.store.keys import AppKeys
from limiter.store.requests import Pipeline, call

# Entries per load round trip (sorted per key: into a set of 1,000,000, Redis takes about
# 3.7 us of CPU an entry in random order, 1.5 in sorted runs of 100,000), and entries per
# comparing call.
LOAD_ENTRIES = 100_000
COMPARE_CHUNK = 5000

Scope = Literal["user", "group"]
# A subject whose count a rebuild changes: scope, id, count, by how much, the rebuilt key.
_Changed = tuple[Scope, str, CountName, int, str]


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

    def __init__(self, context: Context, app: str) -> None:
        self.context = context
        self.app = app
        self.live: AppKeys = context.layout.app(app)
        self.new: AppKeys = self.live.rebuild(secrets.token_hex(8))
        self.group_types: dict[str, str] = {}
        # Elements each rebuild key should hold, from the loads' replies: the switch checks
        # them, so rebuild keys that expired or were evicted mid-way are never switched in.
        self.sizes: Counter[str] = Counter()

    # -- loading ------------------------------------------------------------------------------

    def load(self, records: Sequence[Record]) -> Op[None]:
        """Write one chunk of records into the rebuild keys (one round trip)."""
        return self.write(self.prepare(records))

    def prepare(self, records: Sequence[Record]) -> Pipeline[list[int]] | None:
        """Validate one chunk of records and build the commands that load it (None: nothing
        to load); :meth:`write` sends them."""
        load = loads.Load()
        for record in records:
            try:
                self._take(record, load)
            except InvalidRequest as exc:
                where = getattr(record, "where", "")
                if not where:
                    raise
                field = f"{where}.{exc.field.rpartition('.')[2]}"
                raise InvalidRequest(field, exc.message) from None
        return load.pipeline(self.new)

    def write(self, load: Pipeline[list[int]] | None) -> Op[None]:
        """Send a prepared load, counting what it added to each key (the switch checks it)."""
        if load is None:
            return
        self.written(load, (yield from call(load)))

    def written(self, load: Pipeline[list[int]], replies: Sequence[int]) -> None:
        """Count what a sent load added to each key (from its replies)."""
        for key, added in loads.added_per_key(load, replies):
            self.sizes[key] += added

    def _take(self, record: Record, load: loads.Load) -> None:
        """Validate one record and add its entries to ``load``."""
        context = self.context
        if isinstance(record, AccountRecord):
            load.account(context.ids.user(record.id, "accounts"))
        elif isinstance(record, FriendRecord):
            user = context.ids.user(record.user, "friendships.user")
            friend = context.ids.user(record.friend, "friendships.friend")
            if not isinstance(record.both_ways, bool):
                raise InvalidRequest("friendships.both_ways", "must be true or false")
            if user == friend:
                raise InvalidRequest("friendships", f"{user!r} cannot befriend themselves")
            load.friend(user, friend)
            if record.both_ways:
                load.friend(friend, user)
        elif isinstance(record, GroupRecord):
            group = context.ids.group(record.id, "groups.id")
            group_type = context.catalog.group_type(record.type)
            known = self.group_types.setdefault(group, group_type)
            if known != group_type:
                raise InvalidRequest(
                    "groups.type", f"group {group!r} given as {known} and as {group_type}"
                )
            if isinstance(record.members, str | bytes):
                raise InvalidRequest("groups.members", "must be a list of user ids")
            people = self._people(record)
            spec = context.catalog.group_types[group_type]
            counted, av = spec.counts_toward_groups_per_user, spec.av_chatroom
            load.group(group, group_type, people, counted=counted, av=av)
        else:
            raise InvalidRequest("records", f"not a record: {record!r}")

    def _people(self, record: GroupRecord) -> list[str]:
        """A group's owner (when given) and members, validated together: most of a big
        source's ids are members, and one check of their concatenation (no control characters,
        valid text) plus their lengths costs a fraction of checking each. Any failure checks
        them one by one, so the error names the id."""
        people = [] if record.owner is None else [record.owner]
        people += record.members
        limit = self.context.settings.user_id_max_bytes
        try:
            joined = "".join(people)
            if joined.isascii() and min(map(len, people)) > 0 and max(map(len, people)) <= limit:
                check_entity_id(joined, "groups.members", len(joined))
                return people
        except (TypeError, ValueError, InvalidRequest):
            pass  # no one, a non-string, or a bad id: the checks below name it
        check = self.context.ids.user
        owner = [] if record.owner is None else [check(record.owner, "groups.owner")]
        return owner + [check(member, "groups.members") for member in record.members]

    def abort(self) -> Op[None]:
        """Drop the rebuild keys; the live ones were never touched."""
        yield from call(loads.drop(self.new))

    # -- comparing and switching ---------------------------------------------------------------

    def finish(self, actor: str) -> Op[ReconcileReport]:
        """Compare the rebuilt state with the live one, then switch to it in one script."""
        live, new = self.live, self.new
        accounts = yield from self._diff_set(live.users, new.users)
        rooms = yield from self._diff_set(live.av_rooms, new.av_rooms)
        groups, retyped = yield from self._diff_groups()
        changed: list[_Changed] = []
        friendships = yield from self._diff_relation(live.friends, new.friends, changed, "friends")
        yield from self._diff_relation(live.joined, new.joined, changed, "groups_per_user")
        memberships = yield from self._diff_relation(
            live.members, new.members, changed, "group_members"
        )
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
        now = self.context.clock.now()
        entry = audit.entry(now, actor, "reconcile", "counters", before, report.totals())
        sizes = [self.sizes[key] for key in new.relations()]
        kept = self.context.settings.audit_entries
        swap = scripts.rebuild_swap(live, new, sizes, entry, kept, self.context.metering(live))
        if (yield from call(swap)) < 0:
            raise StoreUnavailable(
                f"reconcile of app {self.app!r}: the rebuilt data expired or was evicted "
                "before the switch; nothing changed, run it again"
            )
        self.context.stats.admin_changes["reconcile"] += 1
        return report

    def _diff_set(self, live: str, new: str) -> Op[Drift]:
        before, after = yield from call(loads.set_sizes(live, new))
        common = 0
        if before and after:
            common = yield from call(loads.common_members(live, new))
        return Drift(before, after, after - common, before - common)

    def _diff_groups(self) -> Op[tuple[Drift, int]]:
        live, new = self.live.groups, self.new.groups
        before, after = yield from call(loads.hash_sizes(live, new))
        common = retyped = 0
        seen: set[str] = set()  # HSCAN may return a field twice while the hash is resized
        cursor = 0
        while True:
            cursor, page = yield from call(loads.hash_page(live, cursor, COMPARE_CHUNK))
            names = [name for name in page if name not in seen]
            seen.update(names)
            if names:
                types = yield from call(reads.group_types(self.new, names))
                for name, new_type in zip(names, types, strict=True):
                    if new_type is not None:
                        common += 1
                        retyped += new_type != page[name]
            if cursor == 0:
                break
        return Drift(before, after, after - common, before - common), retyped

    def _diff_relation(
        self, live: str, new: str, changed: list[_Changed], count: CountName
    ) -> Op[Drift]:
        """What a relation set gains and loses, and each subject whose ``count`` changes
        (added to ``changed``): both sets are walked together in chunks by a read-only script
        that returns only counts per subject, so the work in Python grows with the drift, not
        the app."""
        before, after = yield from call(loads.relation_sizes(live, new))
        delta: Counter[str] = Counter()
        added = removed = 0
        low = "-"
        while True:
            chunk = yield from call(scripts.diff_chunk(live, new, low, COMPARE_CHUNK))
            added, removed = added + chunk.added, removed + chunk.removed
            for subject, change in chunk.changes:
                delta[subject] += change
            if not chunk.more:
                break
            low = "(" + chunk.upper
        scope: Scope = "group" if count == "group_members" else "user"
        changed += ((scope, s, count, d, new) for s, d in delta.items() if d)
        return Drift(before, after, added, removed)

    def _count_changes(self, changed: list[_Changed]) -> Op[tuple[CountChange, ...]]:
        """The first :data:`REPORTED_CHANGES` count changes in (scope, id, count) order, with
        the counts after the rebuild read from the rebuilt sets."""
        changed.sort(key=lambda change: change[:3])
        listed = changed[:REPORTED_CHANGES]
        if not listed:
            return ()
        subjects = [(key, subject) for _, subject, _, _, key in listed]
        counts = yield from call(loads.subject_counts(subjects))
        return tuple(
            CountChange(scope, subject, count, now - change, now)
            for (scope, subject, count, change, _), now in zip(listed, counts, strict=True)
        )
