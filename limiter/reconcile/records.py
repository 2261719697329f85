"""The records a reconcile reads from the IM's own database: accounts, friendships and groups
with their members. ``where`` names the record's place in its source, for errors."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AccountRecord:
    """A registered account. ``where`` says where the source gave it (e.g. ``line 3``), so
    an error names the place; it takes no part in equality."""

    id: str
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class FriendRecord:
    """``friend`` is in ``user``'s friend list (and ``user`` in ``friend``'s when
    ``both_ways``)."""

    user: str
    friend: str
    both_ways: bool = False
    where: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class GroupRecord:
    """A live group with its type and members. A group may come in several records (a big
    one in parts); the owner, when given, is a member."""

    id: str
    type: str
    members: tuple[str, ...] = ()
    owner: str | None = None
    where: str = field(default="", compare=False, repr=False)


Record = AccountRecord | FriendRecord | GroupRecord
