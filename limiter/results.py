"""What the engine answers: small immutable results, one item per id asked about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from limiter.errors import Refusal, Scope


class Outcome(StrEnum):
    ADDED = "added"
    ALREADY = "already"
    REFUSED = "refused"
    REMOVED = "removed"
    ABSENT = "absent"
    NOT_REGISTERED = "not_registered"  # accounts first: not a registered account, nothing done


@dataclass(frozen=True)
class Item:
    """One id's outcome. ``refusal`` says why it was refused or, for an item ``ADDED`` over a
    limit in shadow mode, which refusal was waived."""

    id: str
    outcome: Outcome
    refusal: Refusal | None = None


@dataclass(frozen=True)
class FriendItem(Item):
    """A friend add also says which list entries it created (both-way may complete one side)."""

    requester_side: bool = False
    peer_side: bool = False


@dataclass(frozen=True)
class BatchResult:
    """The outcome of a batch, in request order (duplicates in the request count once).

    ``degraded`` is True when Redis was down and the ``open`` outage policy let it through
    without deciding anything.
    """

    app: str
    items: tuple[Item, ...]
    degraded: bool = False

    def ids(self, outcome: Outcome) -> tuple[str, ...]:
        return tuple(item.id for item in self.items if item.outcome is outcome)

    @property
    def added(self) -> tuple[str, ...]:
        return self.ids(Outcome.ADDED)

    @property
    def refused(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.outcome is Outcome.REFUSED)

    def item(self, id: str) -> Item:
        for item in self.items:
            if item.id == id:
                return item
        raise KeyError(id)


@dataclass(frozen=True)
class MembersResult(BatchResult):
    """``add_members``: the group, its size after the call, and a waived group-size refusal."""

    group: str = ""
    size: int = 0
    shadowed: Refusal | None = None


@dataclass(frozen=True)
class DeletedUser:
    id: str
    registered: bool
    friendships_released: int
    memberships_released: int


@dataclass(frozen=True)
class DeleteResult:
    app: str
    users: tuple[DeletedUser, ...]
    degraded: bool = False


@dataclass(frozen=True)
class GroupCreated:
    app: str
    group: str
    type: str
    members: int
    shadowed: tuple[Refusal, ...] = ()
    degraded: bool = False


@dataclass(frozen=True)
class GroupDestroyed:
    app: str
    group: str
    existed: bool
    members_released: int
    degraded: bool = False


@dataclass(frozen=True)
class Usage:
    """App-wide counts: registered users, live groups (all types), AV chat rooms."""

    users: int
    groups: int
    av_chatrooms: int


@dataclass(frozen=True)
class UserUsage:
    user: str
    registered: bool
    friends: int
    groups: int


@dataclass(frozen=True)
class GroupUsage:
    group: str
    type: str
    members: int


@dataclass(frozen=True)
class AuditEntry:
    """One plan change: when, by whom (an admin token's name, or the Python caller's
    ``actor``), which action on which plan field, and the field's value before and after
    (decoded JSON; None when absent)."""

    at: datetime
    actor: str
    action: str
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class OverLimit:
    """An entity holding more than its effective limit allows (lower limits never evict)."""

    scope: Scope
    id: str
    limit: str
    current: int
    maximum: int


@dataclass(frozen=True)
class Migrated:
    """What ``migrate`` moved from the relation layout of limiter 0.1 (app-wide sorted sets)
    into the per-entity keys: entries per relation (friends, friended_by, members, joined,
    joined_free). All zero: nothing was left in the old layout."""

    app: str
    moved: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.moved.values())


@dataclass(frozen=True)
class DataStatus:
    """What one engine knows about its data set."""

    marker: str | None  # the id of the marker the latest check read (an app's, or the data
    # set's for check_data); None before the first successful check
    since: datetime | None  # when that marker was written: its app's (or data set's) first contact
    checked_at: datetime | None  # the last successful check, by the engine's clock
    resets: int  # flushes or replacements this engine detected
    last_reset_at: datetime | None  # when it detected the latest one
