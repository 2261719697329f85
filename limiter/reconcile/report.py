"""What a reconcile changed: drift per kind of thing and the per-entity count changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Per-entity count changes listed in a report (the total is always given).
REPORTED_CHANGES = 1000


@dataclass(frozen=True)
class Drift:
    """One kind of thing before and after a rebuild, and how many were added and removed."""

    before: int
    after: int
    added: int
    removed: int


CountName = Literal["friends", "groups_per_user", "group_members"]


@dataclass(frozen=True)
class CountChange:
    """A count the rebuild changed: a user's friends or groups, or a group's members."""

    scope: Literal["user", "group"]
    id: str
    count: CountName
    before: int
    after: int


@dataclass(frozen=True)
class Orphans:
    """What a rebuild dropped because it names an id the source does not list as an account:
    how many such ids, the friend-list entries (either side) and memberships dropped, and the
    first :data:`REPORTED_CHANGES` ids in order."""

    accounts: int
    friendships: int
    memberships: int
    ids: tuple[str, ...]


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
    orphans: Orphans

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
