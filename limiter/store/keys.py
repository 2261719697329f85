"""The Redis key layout: every key of one app shares the hash tag ``{app}``, so one slot.

    <prefix>:{<app>}:plan         HASH  plan state fields (edition, expansion:*, override:*)
    <prefix>:{<app>}:users        SET   registered user ids
    <prefix>:{<app>}:friends      ZSET  "a\\0b": b is in a's friend list (all scores 0)
    <prefix>:{<app>}:friended_by  ZSET  "b\\0a": the same relation, indexed by the friend
    <prefix>:{<app>}:groups       HASH  group id -> canonical group type
    <prefix>:{<app>}:members      ZSET  "g\\0u": u is a member of g
    <prefix>:{<app>}:joined       ZSET  "u\\0g": u's groups that count toward groups_per_user
    <prefix>:{<app>}:joined_free  ZSET  "u\\0g": u's groups that do not (AV chat rooms)
    <prefix>:{<app>}:av_rooms     SET   AV chat room group ids
    <prefix>:{<app>}:audit        LIST  admin changes, newest first, bounded (JSON entries)
    <prefix>:{<app>}:ledger       LIST  purchases and edition changes, oldest first (the bill)
    <prefix>:{<app>}:dau:<date>   SET   users seen that billing day; expires once the day closes
    <prefix>:{<app>}:meter:<YYYY-MM>  HASH  the month's metering: dau:<date> counts, peak_dau,
                                  peak_dau_day, peak_groups, peak_groups_day, groups_start,
                                  bandwidth:<date> peaks; expires after the retention
    <prefix>:{<app>}:marker       STRING  "<id> <ISO instant>": the app's marker, written on the
                                  first contact (limiter/marker.py: a flushed shard is seen)
    <prefix>:{<app>}:rebuild:<token>:<name>  a reconcile's new data, renamed over the live keys
    <prefix>:marker               STRING  the same for the data set as a whole (health
                                  checks); the one key without an app's hash tag

Relations live in a few app-wide sorted sets instead of one key per user or group, so every
script names all its keys in KEYS (Redis Cluster safe) and counts are exact ``ZLEXCOUNT`` ranges
(``[u\\0`` .. ``(u\\1``): there is no separate counter that could drift. Ids never contain
control characters (validated), so ``\\0`` cannot occur inside one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date

from limiter.errors import InvalidRequest
from limiter.ids import check_app_id

_PREFIX = re.compile(r"[A-Za-z0-9_.\-:]{1,64}")


@dataclass(frozen=True)
class AppKeys:
    base: str = field(repr=False)
    plan: str
    users: str
    friends: str
    friended_by: str
    groups: str
    members: str
    joined: str
    joined_free: str
    av_rooms: str
    audit: str
    ledger: str
    marker: str

    def dau(self, day: date) -> str:
        """The set of users seen on one billing day."""
        return f"{self.base}dau:{day.isoformat()}"

    def meter(self, month: str) -> str:
        """The metering hash of one ``YYYY-MM`` month."""
        return f"{self.base}meter:{month}"

    def rebuild(self, token: str) -> AppKeys:
        """The keys a reconcile fills before they replace the live ones (same hash tag)."""
        return KeyLayout.build(f"{self.base}rebuild:{token}:")

    def relations(self) -> tuple[str, ...]:
        """The keys a reconcile rebuilds: accounts, friendships, groups and memberships."""
        return (
            self.users,
            self.friends,
            self.friended_by,
            self.groups,
            self.members,
            self.joined,
            self.joined_free,
            self.av_rooms,
        )

    def fixed(self) -> tuple[str, ...]:
        """Every key with a fixed name (not the per-day and per-month ones)."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "base")


class KeyLayout:
    """Builds the keys of an app under a configurable prefix."""

    def __init__(self, prefix: str = "limiter") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise InvalidRequest("key_prefix", "1-64 characters of A-Z a-z 0-9 _ . - :")
        self.prefix = prefix

    def marker(self) -> str:
        """The data set's marker: one per data set and prefix (a single-key command)."""
        return f"{self.prefix}:marker"

    def app(self, app: str) -> AppKeys:
        return self.build(f"{self.prefix}:{{{check_app_id(app)}}}:")

    @staticmethod
    def build(base: str) -> AppKeys:
        names = [f.name for f in fields(AppKeys) if f.name != "base"]
        return AppKeys(base, *(base + name for name in names))
