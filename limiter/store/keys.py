"""The Redis key layout: every key of one app shares the hash tag ``{app}``, so one slot.

    <prefix>:{<app>}:plan         HASH  plan state fields (edition, expansion:*, override:*)
    <prefix>:{<app>}:users        SET   registered user ids
    <prefix>:{<app>}:strays       SET   ids that hold relations without being registered
                                  (LIMITER_REQUIRE_REGISTERED off, or an account released
                                  by unregister_users while it was related)
    <prefix>:{<app>}:groups       HASH  group id -> canonical group type
    <prefix>:{<app>}:av_rooms     SET   AV chat room group ids
    <prefix>:{<app>}:gen          STRING  the generation of the relation keys (absent: "0")
    <prefix>:{<app>}:friends:<gen>:<user>      HASH  user's friend list (fields: friend ids)
    <prefix>:{<app>}:friended_by:<gen>:<user>  HASH  whose lists hold user (the reverse index)
    <prefix>:{<app>}:members:<gen>:<group>     HASH  group's members
    <prefix>:{<app>}:joined:<gen>:<user>       HASH  user's groups that count toward
                                               groups_per_user
    <prefix>:{<app>}:joined_free:<gen>:<user>  HASH  user's groups that do not (AV chat rooms)
    <prefix>:{<app>}:audit        LIST  admin changes, newest first, bounded (JSON entries)
    <prefix>:{<app>}:ledger       LIST  purchases and edition changes, oldest first (the bill)
    <prefix>:{<app>}:dau:<date>   SET   users seen that billing day; expires once the day closes
    <prefix>:{<app>}:meter:<YYYY-MM>  HASH  the month's metering: dau:<date> counts, peak_dau,
                                  peak_dau_day, peak_groups, peak_groups_day, groups_start,
                                  bandwidth:<date> peaks; expires after the retention
    <prefix>:{<app>}:marker       STRING  "<id> <ISO instant>": the app's marker, written on the
                                  first contact (limiter/marker.py: a flushed shard is seen)
    <prefix>:{<app>}:rebuilds     HASH  generation -> when a reconcile started writing it, or
                                  RETIRED: generations whose keys are still to be deleted
    <prefix>:{<app>}:rebuild:<gen>:<name>  a reconcile's users, groups and AV rooms for
                                  generation <gen> (renamed over the live ones by its switch),
                                  its index of ids that got relation keys (``strays``) and
                                  the ids it has compared (``seen``)
    <prefix>:marker               STRING  the same for the data set as a whole (health
                                  checks); the one key without an app's hash tag

Relations are kept one small hash per user and per group (field: the other id, value ""), which
Redis stores as a compact listpack up to ``hash-max-listpack-entries`` fields (128 by default):
a relation costs tens of bytes, counts are ``HLEN`` and no operation's cost grows with the app.
Scripts name each relation by its namespace (``<prefix>:{<app>}:friends``, in KEYS) and derive
the per-entity keys inside the script, under the same hash tag (one slot, Redis Cluster safe).
Every id that holds relation keys is in ``users`` or ``strays``, so the keys of an app can be
listed without a scan. A reconcile writes a new generation beside the live one and switches to
it by setting ``gen`` (one step whatever the app's size), then deletes the old generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import date

from limiter.errors import InvalidRequest
from limiter.ids import check_app_id

# What a generation's entry in an app's ``rebuilds`` hash holds once a switch retired it (else
# the instant its reconcile started): its keys are to be deleted.
RETIRED = "retired"

_PREFIX = re.compile(r"[A-Za-z0-9_.\-:]{1,64}")


@dataclass(frozen=True)
class AppKeys:
    base: str = field(repr=False)
    plan: str
    users: str
    strays: str
    groups: str
    av_rooms: str
    gen: str
    audit: str
    ledger: str
    marker: str
    rebuilds: str
    seen: str
    # Relation namespaces: the per-entity keys are "<namespace>:<generation>:<id>".
    friends: str
    friended_by: str
    members: str
    joined: str
    joined_free: str

    def dau(self, day: date) -> str:
        """The set of users seen on one billing day."""
        return f"{self.base}dau:{day.isoformat()}"

    def meter(self, month: str) -> str:
        """The metering hash of one ``YYYY-MM`` month."""
        return f"{self.base}meter:{month}"

    def rebuild(self, generation: str) -> AppKeys:
        """The keys of a reconcile that writes relation ``generation``: its own users, strays,
        groups, AV rooms and ``gen`` (which holds ``generation``) beside the live ones, the
        live relation namespaces (the generation tells the keys apart)."""
        own = KeyLayout.build(f"{self.base}rebuild:{generation}:")
        shared = (*NAMESPACES, "rebuilds")
        return replace(own, **{name: getattr(self, name) for name in shared})

    def indexes(self) -> tuple[str, ...]:
        """The keys a reconcile switches: accounts, strays, groups and AV rooms."""
        return (self.users, self.strays, self.groups, self.av_rooms)

    def namespaces(self) -> tuple[str, ...]:
        """The relation namespaces, in :data:`NAMESPACES` order."""
        return tuple(getattr(self, name) for name in NAMESPACES)

    def fixed(self) -> tuple[str, ...]:
        """Every key with a fixed name (not the per-day, per-month and per-entity ones)."""
        names = (f.name for f in fields(self) if f.name not in {"base", *NAMESPACES})
        return tuple(getattr(self, name) for name in names)


# The relation namespaces: per user its friends and the reverse index, its counted and
# uncounted groups; per group its members.
NAMESPACES = ("friends", "friended_by", "members", "joined", "joined_free")
USER_NAMESPACES = ("friends", "friended_by", "joined", "joined_free")


def entity(namespace: str, generation: str, subject: str) -> str:
    """The key of one user's or group's relations (``lib.lua``'s ``entity``)."""
    return f"{namespace}:{generation}:{subject}"


class KeyLayout:
    """Builds the keys of an app under a configurable prefix."""

    def __init__(self, prefix: str = "limiter") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise InvalidRequest("key_prefix", "1-64 characters of A-Z a-z 0-9 _ . - :")
        self.prefix = prefix

    def marker(self) -> str:
        """The data set's marker: one per data set and prefix (a single-key command)."""
        return f"{self.prefix}:marker"

    def legacy_patterns(self) -> tuple[str, ...]:
        """SCAN patterns of the relation sorted sets of limiter 0.1's layout (one app-wide key
        per relation, named as today's namespaces): what ``limiter migrate`` converts."""
        return tuple(f"{self.prefix}:{{*}}:{name}" for name in NAMESPACES)

    def apps_of(self, keys: list[str]) -> list[str]:
        """The app ids (the hash tags) of keys of this layout, sorted, once each."""
        start = len(self.prefix) + 2
        return sorted({key[start : key.index("}", start)] for key in keys})

    def app(self, app: str) -> AppKeys:
        return self.build(f"{self.prefix}:{{{check_app_id(app)}}}:")

    @staticmethod
    def build(base: str) -> AppKeys:
        names = [f.name for f in fields(AppKeys) if f.name != "base"]
        return AppKeys(base, *(base + name for name in names))
