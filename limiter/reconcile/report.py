"""What a reconcile changed: drift per kind of thing and the per-entity count changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

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
