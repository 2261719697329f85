"""A reconcile's I/O: the rebuilt relations loaded in bulk beside the live keys (same hash
tag), and the reads that compare rebuilt and live keys. The entry formats of the relation sets
are written here and in ``lib.lua`` only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from limiter.store.keys import AppKeys
from limiter.store.reads import lexical_range
from limiter.store.requests import Arg, Pipeline

# Rebuild keys left behind by a rebuild that never finished disappear after this long.
REBUILD_TTL_SECONDS = 3600
# Ids per command when loading.
LOAD_BATCH = 1000


@dataclass
class Load:
    """The entries one load writes, per rebuilt key, as the source's records are taken."""

    users: list[str] = field(default_factory=list)
    friends: list[str] = field(default_factory=list)
    friended_by: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    joined_free: list[str] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)

    def account(self, user: str) -> None:
        self.users.append(user)

    def friend(self, user: str, friend: str) -> None:
        """``friend`` is in ``user``'s list."""
        self.friends.append(f"{user}\0{friend}")
        self.friended_by.append(f"{friend}\0{user}")

    def group(
        self, group: str, group_type: str, people: Sequence[str], *, counted: bool, av: bool
    ) -> None:
        """A group of ``group_type`` with these members (``counted``: toward their
        groups_per_user; ``av``: an AV chat room)."""
        self.groups[group] = group_type
        if av:
            self.rooms.append(group)
        side = self.joined if counted else self.joined_free
        prefix, suffix = group + "\0", "\0" + group
        self.members += [prefix + person for person in people]
        side += [person + suffix for person in people]

    def pipeline(self, keys: AppKeys) -> Pipeline[list[int]] | None:
        """The commands that write this load into the rebuilt ``keys`` (None: nothing to
        load). Entries are sorted per key: Redis inserts a sorted run into a big sorted set in
        well under half the time of the same entries in random order (its skiplist path stays
        in cache)."""
        commands: list[tuple[Arg, ...]] = []
        for key, values in ((keys.users, self.users), (keys.av_rooms, self.rooms)):
            commands += (("SADD", key, *batch) for batch in _batches(values))
        for key, values in (
            (keys.friends, self.friends),
            (keys.friended_by, self.friended_by),
            (keys.members, self.members),
            (keys.joined, self.joined),
            (keys.joined_free, self.joined_free),
        ):
            values.sort()
            commands += (_zadd(key, batch) for batch in _batches(values))
        for batch in _batches(list(self.groups.items())):
            commands.append(("HSET", keys.groups, *(part for pair in batch for part in pair)))
        if not commands:
            return None
        expire = [("EXPIRE", key, REBUILD_TTL_SECONDS) for key in keys.relations()]
        return Pipeline((*commands, *expire))


def added_per_key(load: Pipeline[list[int]], replies: Sequence[int]) -> Iterator[tuple[str, int]]:
    """What each command of a sent load added to its key (from its replies)."""
    for command, added in zip(load.commands, replies, strict=True):
        if command[0] != "EXPIRE":
            yield str(command[1]), added


def drop(keys: AppKeys) -> Pipeline[list[Any]]:
    """Delete rebuilt keys (a rebuild given up)."""
    return Pipeline((("DEL", *keys.relations()),))


def set_sizes(live: str, new: str) -> Pipeline[tuple[int, int]]:
    return Pipeline((("SCARD", live), ("SCARD", new)), tuple)


def common_members(live: str, new: str) -> Pipeline[int]:
    return Pipeline((("SINTERCARD", 2, live, new),), lambda replies: replies[0])


def hash_sizes(live: str, new: str) -> Pipeline[tuple[int, int]]:
    return Pipeline((("HLEN", live), ("HLEN", new)), tuple)


def hash_page(key: str, cursor: int | str, count: int) -> Pipeline[tuple[int, dict[str, str]]]:
    """One HSCAN page: the next cursor (0 at the end) and the fields found."""

    def decode(replies: list[Any]) -> tuple[int, dict[str, str]]:
        next_cursor, page = replies[0]
        return int(next_cursor), page

    return Pipeline((("HSCAN", key, cursor, "COUNT", count),), decode)


def relation_sizes(live: str, new: str) -> Pipeline[tuple[int, int]]:
    return Pipeline((("ZCARD", live), ("ZCARD", new)), tuple)


def subject_counts(subjects: Sequence[tuple[str, str]]) -> Pipeline[list[int]]:
    """The entries of each (relation key, subject)."""
    return Pipeline(tuple(("ZLEXCOUNT", key, *lexical_range(s)) for key, s in subjects))


def _zadd(key: str, entries: Sequence[str]) -> tuple[str, ...]:
    """``ZADD key 0 e1 0 e2 ...`` (every relation entry scores 0: sets ordered by the entry)."""
    args = ["0"] * (2 * len(entries))
    args[1::2] = entries
    return ("ZADD", key, *args)


def _batches(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), LOAD_BATCH):
        yield values[start : start + LOAD_BATCH]
