"""The rebuild of a reconcile: the source's records validated and loaded in chunks as a new
generation of relation keys beside the live one; relations of ids that are not among the
source's accounts dropped (orphans); the generations compared page by page of ids by a script
that returns only totals and count changes (memory grows with the drift, not with the app);
then switched in by one script, which refuses if the rebuilt indexes lost anything; then the old
generation's keys deleted. Changes made to the live keys while a rebuild runs are replaced by
the source's state: run it from a consistent snapshot.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from limiter.errors import InvalidRequest, PlanConflict, StoreUnavailable
from limiter.ids import check_entity_id
from limiter.ops.context import Context, Op
from limiter.reconcile.records import AccountRecord, FriendRecord, GroupRecord, Record
from limiter.reconcile.report import (
    REPORTED_CHANGES,
    CountChange,
    CountName,
    Drift,
    Orphans,
    ReconcileReport,
)
from limiter.store import audit, loads, reads, scripts
from limiter.store.keys import RETIRED, USER_NAMESPACES, AppKeys
from limiter.store.requests import Pipeline, call

# Entries per load round trip (a bigger load writes each user's joined groups in fewer,
# longer writes; two loads are in memory at once: one sent, one built), and ids per page
# when comparing or deleting a generation.
LOAD_ENTRIES = 300_000
COMPARE_CHUNK = 2000
# A rebuild's generation not switched in after this long was left by a reconcile that stopped
# (its keys are deleted by the next reconcile of the app).
LEFT_AFTER = timedelta(hours=1)

Scope = Literal["user", "group"]


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
        self.generation = secrets.token_hex(8)
        self.new: AppKeys = self.live.rebuild(self.generation)
        self.started = context.clock.now().isoformat()
        self.group_types: dict[str, str] = {}
        # Elements each rebuilt index should hold, from the loads' replies: the switch checks
        # them, so an index evicted mid-way is never switched in.
        self.sizes: Counter[str] = Counter()

    # -- loading ------------------------------------------------------------------------------

    def load(self, records: Sequence[Record]) -> Op[None]:
        """Write one chunk of records into the rebuild keys (one round trip)."""
        return self.write(self.prepare(records))

    def prepare(self, records: Sequence[Record]) -> Pipeline[list[int]] | None:
        """Validate one chunk of records and build the commands that load it (None: nothing
        to load); :meth:`write` sends them."""
        load = loads.Load(self.new, self.generation)
        for record in records:
            try:
                self._take(record, load)
            except InvalidRequest as exc:
                where = getattr(record, "where", "")
                if not where:
                    raise
                field = f"{where}.{exc.field.rpartition('.')[2]}"
                raise InvalidRequest(field, exc.message) from None
        return load.pipeline(self._begin())

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
        """Delete the rebuild's generation; the live one was never touched."""
        yield from self._drop(self.generation)

    # -- comparing and switching ---------------------------------------------------------------

    def finish(self, actor: str) -> Op[ReconcileReport]:
        """Drop the orphans, compare the rebuilt generation with the live one, switch to it in
        one script, then delete the old generation's keys."""
        live, new = self.live, self.new
        yield from call(self._begin())
        live_generation, rebuilds = yield from call(loads.generations(live))
        for generation, state in rebuilds.items():
            if generation not in (self.generation, live_generation) and self._left(state):
                yield from self._drop(generation)
        orphans = yield from self._drop_orphans()
        accounts = yield from self._diff_set(live.users, new.users)
        rooms = yield from self._diff_set(live.av_rooms, new.av_rooms)
        groups, retyped = yield from self._diff_groups()
        diff = _Diff()
        # friendships and memberships are compared entry by entry (the report's drifts), a
        # user's groups only by count (the mirror image of the groups' members)
        user_sides = ((live.friends, True), (live.joined, False))
        for index in (live.users, live.strays, new.users):
            yield from self._diff_entities(index, "u:", user_sides, diff)
        for index in (live.groups, new.groups):
            yield from self._diff_entities(index, "g:", ((live.members, True),), diff)
        changes = tuple(sorted(diff.changes, key=lambda c: (c.scope, c.id, c.count)))
        report = ReconcileReport(
            self.app,
            accounts,
            diff.drift(live.friends),
            groups,
            diff.drift(live.members),
            rooms,
            retyped,
            changes[:REPORTED_CHANGES],
            len(changes),
            orphans,
        )
        before = {
            "accounts": accounts.before,
            "friendships": report.friendships.before,
            "groups": groups.before,
            "memberships": report.memberships.before,
            "av_chatrooms": rooms.before,
        }
        now = self.context.clock.now()
        entry = audit.entry(now, actor, "reconcile", "counters", before, report.totals())
        sizes = (self.sizes[new.users], self.sizes[new.groups], self.sizes[new.av_rooms])
        swap = scripts.Swap(live_generation, self.generation, sizes)
        kept = self.context.settings.audit_entries
        metering = self.context.metering(live)
        switched = yield from call(scripts.rebuild_swap(live, new, swap, entry, kept, metering))
        if switched == -2:
            raise PlanConflict(
                f"reconcile of app {self.app!r}: another reconcile switched the app first; "
                "nothing changed, run it again"
            )
        if switched < 0:
            raise StoreUnavailable(
                f"reconcile of app {self.app!r}: the rebuilt data was evicted before the "
                "switch; nothing changed, run it again"
            )
        self.context.stats.admin_changes["reconcile"] += 1
        yield from self._drop(live_generation)
        return report

    def _left(self, state: str) -> bool:
        """Whether a generation in ``rebuilds`` is left over: retired, or its reconcile
        started more than :data:`LEFT_AFTER` ago (it stopped before its end)."""
        if state == RETIRED:
            return True
        try:
            started = datetime.fromisoformat(state)
        except ValueError:
            return True
        return self.context.clock.now() - started > LEFT_AFTER

    def _begin(self) -> Pipeline[Any]:
        return loads.begin(self.live, self.new, self.generation, self.started)

    def _drop_orphans(self) -> Op[Orphans]:
        """Delete from the rebuild every relation of an id that is not among its accounts
        (the rebuild's ``strays`` lists every id given a relation)."""
        new = self.new
        found: list[str] = []
        friendships = memberships = 0
        cursor = None
        while cursor != 0:
            cursor, ids = yield from call(reads.set_page(new.strays, cursor or 0, COMPARE_CHUNK))
            if not ids:
                continue
            registered = yield from call(loads.known(new.users, ids))
            orphans = [i for i, known in zip(ids, registered, strict=True) if not known]
            if orphans:
                for deleted in (yield from call(scripts.delete_users(new, orphans))):
                    friendships += deleted.friendships
                    memberships += deleted.memberships
                found += orphans
        found = sorted(set(found))
        return Orphans(len(found), friendships, memberships, tuple(found[:REPORTED_CHANGES]))

    def _diff_entities(
        self, index: str, prefix: str, namespaces: Sequence[tuple[str, bool]], diff: _Diff
    ) -> Op[None]:
        """Compare the relations of every id of ``index`` (a set, or a groups hash) not
        compared yet, in ``namespaces`` (each with whether its entries are compared, or only
        its counts)."""
        scope: Scope = "group" if prefix == "g:" else "user"
        cursor = 0
        while True:
            page = scripts.Page(index, scope == "group", cursor, COMPARE_CHUNK)
            cursor, found = yield from call(
                scripts.diff_entities(self.live, self.new, page, namespaces, prefix)
            )
            diff.add(scope, namespaces, found)
            if cursor == 0:
                return

    def _drop(self, generation: str) -> Op[None]:
        """Delete a generation's relation keys (found from its indexes), then its indexes."""
        live, indexes = self.live, self.live.rebuild(generation)
        user_sides = [getattr(live, namespace) for namespace in USER_NAMESPACES]
        for index, namespaces in (
            (indexes.users, user_sides),
            (indexes.strays, user_sides),
            (indexes.groups, [live.members]),
        ):
            cursor = 0
            while True:
                page = scripts.Page(index, index == indexes.groups, cursor, COMPARE_CHUNK)
                cursor = yield from call(scripts.drop_entities(page, namespaces, generation))
                if cursor == 0:
                    break
        yield from call(loads.drop_generation(live, generation))

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
            cursor, page = yield from call(reads.hash_page(live, cursor, COMPARE_CHUNK))
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


_COUNTS: dict[str, CountName] = {"friends": "friends", "joined": "groups_per_user"}


class _Diff:
    """The comparison's running totals per namespace and the count changes found."""

    def __init__(self) -> None:
        self.totals: dict[str, list[int]] = {}
        self.changes: list[CountChange] = []

    def add(
        self, scope: Scope, namespaces: Sequence[tuple[str, bool]], page: scripts.EntityDiff
    ) -> None:
        compared = [name for name, contents in namespaces if contents]
        for namespace, total in zip(compared, page.totals, strict=True):
            running = self.totals.setdefault(namespace, [0, 0, 0, 0])
            for i, value in enumerate(total):
                running[i] += value
        for index, subject, change, after in page.changes:
            name = namespaces[index - 1][0].rpartition(":")[2]
            count = _COUNTS.get(name, "group_members")
            self.changes.append(CountChange(scope, subject, count, after - change, after))

    def drift(self, namespace: str) -> Drift:
        return Drift(*self.totals.get(namespace, [0, 0, 0, 0]))
