"""Reservations: an addition made ahead of the caller's own work and released if that work
fails, and the actions that can be reserved with the parameters each one takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from limiter.results import BatchResult, GroupCreated, MembersResult

# What each reservable action needs from its caller (besides the app); optional ones last.
ACTION_PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "register_users": ("users",),
    "add_friends": ("user", "peers", "both_ways"),
    "create_group": ("group", "type", "owner", "members"),
    "add_members": ("group", "users"),
}
# The defaults of the optional parameters above.
OPTIONAL_PARAMETERS: Mapping[str, Any] = {"both_ways": True, "members": ()}


@dataclass(frozen=True)
class Reservation:
    """An addition made ahead of the caller's own work, undone by ``release`` if that fails."""

    action: str
    app: str
    result: BatchResult | GroupCreated
    requester: str | None = None  # add_friends: whose list the peers were added to

    @classmethod
    def of(
        cls, app: str, result: BatchResult | GroupCreated, requester: str | None = None
    ) -> Reservation:
        """The reservation that made ``result`` (an operation's answer): what ``release``
        needs to undo exactly what it added. ``requester``: the user of an ``add_friends``."""
        if isinstance(result, GroupCreated):
            action = "create_group"
        elif isinstance(result, MembersResult):
            action = "add_members"
        elif requester is not None:
            action = "add_friends"
        else:
            action = "register_users"
        return cls(action, app, result, requester)
