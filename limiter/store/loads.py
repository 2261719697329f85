"""A reconcile's I/O: the rebuilt relations loaded in bulk as a new generation beside the live
one (same hash tag), the reads that compare them, and the deletion of a generation's keys. The
per-entity keys are named here and in ``lib.lua`` only (:func:`limiter.store.keys.entity`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from limiter.store import scripts
from limiter.store.keys import NAMESPACES, AppKeys
from limiter.store.redis import script_sources
from limiter.store.requests import Arg, Pipeline, ScriptCall

# Ids or fields per command when loading.
LOAD_BATCH = 1000
# Relation fields per load_relations call (a script runs alone: each stays short).
RELATION_BATCH = 10_000
# Each namespace as load_relations names it: its index in NAMESPACES.
FRIENDS, FRIENDED_BY, MEMBERS, JOINED, JOINED_FREE = (
    NAMESPACES.index(name)
    for name in ("friends", "friended_by", "members", "joined", "joined_free")
)


class Load:
    """The entries one load writes into a rebuild's generation, as the source's records are
    taken. ``keys``: the rebuild's keys (:meth:`AppKeys.rebuild`), ``generation``: its own."""

    def __init__(self, keys: AppKeys, generation: str) -> None:
        self.keys = keys
        self.generation = generation
        self.users: list[str] = []
        self.rooms: list[str] = []
        self.groups: dict[str, str] = {}
        # Every id given a relation key (the rebuild's ``strays``: its orphans are found there).
        self.touched: set[str] = set()
        # Per namespace (in NAMESPACES' order): subject -> the other ends of its relations
        self.fields: tuple[defaultdict[str, list[str]], ...] = tuple(
            defaultdict(list) for _ in NAMESPACES
        )

    def account(self, user: str) -> None:
        self.users.append(user)

    def friend(self, user: str, friend: str) -> None:
        """``friend`` is in ``user``'s list."""
        self.fields[FRIENDS][user].append(friend)
        self.fields[FRIENDED_BY][friend].append(user)
        self.touched.update((user, friend))

    def group(
        self, group: str, group_type: str, people: Sequence[str], *, counted: bool, av: bool
    ) -> None:
        """A group of ``group_type`` with these members (``counted``: toward their
        groups_per_user; ``av``: an AV chat room)."""
        self.groups[group] = group_type
        if av:
            self.rooms.append(group)
        self.fields[MEMBERS][group] += people
        joined = self.fields[JOINED if counted else JOINED_FREE]
        for person in people:
            joined[person].append(group)
        self.touched.update(people)

    def pipeline(self, begin: Pipeline[Any]) -> Pipeline[list[int]] | None:
        """The commands that write this load (None: nothing to load), after ``begin``'s
        (:func:`begin`: the generation is registered before any of its keys is written)."""
        keys = self.keys
        commands: list[tuple[Arg, ...]] = []
        for key, values in (
            (keys.users, self.users),
            (keys.av_rooms, self.rooms),
            (keys.strays, list(self.touched)),
        ):
            commands += (("SADD", key, *batch) for batch in _batches(values))
        commands += self._relations()
        for pairs in _batches(list(self.groups.items())):
            commands.append(("HSET", keys.groups, *(part for pair in pairs for part in pair)))
        if not commands:
            return None
        return Pipeline((*begin.commands, *commands))

    def _relations(self) -> Iterator[tuple[Arg, ...]]:
        """load_relations calls writing every relation of the load, RELATION_BATCH fields
        each at most (a long list is split over calls)."""
        entries: list[tuple[int, str, Sequence[str]]] = []
        size = 0
        for namespace, fields in enumerate(self.fields):
            for subject, others in fields.items():
                parts = [others]
                if len(others) > RELATION_BATCH:
                    parts = [
                        others[start : start + RELATION_BATCH]
                        for start in range(0, len(others), RELATION_BATCH)
                    ]
                for part in parts:
                    if size + len(part) > RELATION_BATCH:
                        yield in_pipeline(
                            scripts.load_relations(self.keys, self.generation, entries)
                        )
                        entries, size = [], 0
                    entries.append((namespace, subject, part))
                    size += len(part)
        if entries:
            yield in_pipeline(scripts.load_relations(self.keys, self.generation, entries))


def in_pipeline(script: ScriptCall[Any]) -> tuple[Arg, ...]:
    """A script call as one command of a pipeline: EVAL of its source, not EVALSHA (a
    pipeline cannot reload a script a server lost; Redis caches it all the same)."""
    source = script_sources()[script.script]
    return ("EVAL", source, len(script.keys), *script.keys, *script.args)


def begin(live: AppKeys, rebuilt: AppKeys, generation: str, started: str) -> Pipeline[Any]:
    """Register a rebuild's generation in the app's ``rebuilds`` (so that its keys are found
    and deleted if it never finishes) and store it in the rebuild's ``gen``."""
    commands = (("HSET", live.rebuilds, generation, started), ("SET", rebuilt.gen, generation))
    return Pipeline(commands)


def added_per_key(load: Pipeline[list[int]], replies: Sequence[int]) -> Iterator[tuple[str, int]]:
    """What each command of a sent load added to its key (from its replies)."""
    for command, added in zip(load.commands, replies, strict=True):
        if command[0] in ("SADD", "HSET"):
            yield str(command[1]), added


def set_sizes(live: str, new: str) -> Pipeline[tuple[int, int]]:
    return Pipeline((("SCARD", live), ("SCARD", new)), tuple)


def common_members(live: str, new: str) -> Pipeline[int]:
    return Pipeline((("SINTERCARD", 2, live, new),), lambda replies: replies[0])


def hash_sizes(live: str, new: str) -> Pipeline[tuple[int, int]]:
    return Pipeline((("HLEN", live), ("HLEN", new)), tuple)


def known(key: str, ids: Sequence[str]) -> Pipeline[list[bool]]:
    """Whether each id is in the set ``key``."""
    return Pipeline((("SMISMEMBER", key, *ids),), lambda replies: [bool(r) for r in replies[0]])


def generations(live: AppKeys) -> Pipeline[tuple[str, dict[str, str]]]:
    """The app's live generation and its ``rebuilds`` (generation -> started, or retired)."""

    def decode(replies: list[Any]) -> tuple[str, dict[str, str]]:
        return replies[0] or "0", replies[1]

    return Pipeline((("GET", live.gen), ("HGETALL", live.rebuilds)), decode)


def drop_generation(live: AppKeys, generation: str) -> Pipeline[Any]:
    """Forget a generation whose relation keys are gone: its indexes and its entry."""
    rebuilt = live.rebuild(generation)
    names = (*rebuilt.indexes(), rebuilt.gen, rebuilt.seen)
    return Pipeline((("UNLINK", *names), ("HDEL", live.rebuilds, generation)))


def _batches(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), LOAD_BATCH):
        yield values[start : start + LOAD_BATCH]
