"""The one exception tree of limiter; every error carries machine-readable fields.

LimiterError
├── ConfigurationError        bad settings or plan catalog, raised at start-up
├── InvalidRequest            bad input (also a ValueError); ``field`` names it
│   └── OutsideRetention      a history query reaching before the app's history cutoff
├── PlanConflict              a plan change the app cannot take (a trial buying an expansion)
├── GroupNotFound             an operation on a group that does not exist (IM code 10010)
├── GroupExists               creating a group whose id is taken (IM code 10021)
├── NotRegistered             accounts first: a relation names ids that are not accounts
├── Refused                   a limit said no; carries limit, scope, current, maximum, code
│   └── Suspended             the paid package lapsed or has not started (IM code 60020)
└── StoreUnavailable          Redis could not be reached (outage policy ``closed``)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

Scope = Literal["app", "user", "group"]


class LimiterError(Exception):
    """Base of every error limiter raises."""


class ConfigurationError(LimiterError):
    """The settings or the plan catalog are unusable; raised when the limiter is built."""


class InvalidRequest(LimiterError, ValueError):
    """The caller passed something the limiter cannot act on; nothing was changed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class OutsideRetention(InvalidRequest):
    """A history query starts before what the app's ``history_days`` keeps."""

    def __init__(self, field: str, cutoff: datetime) -> None:
        super().__init__(
            field, f"reaches before {cutoff.isoformat()}, the oldest history this app keeps"
        )
        self.cutoff = cutoff


class PlanConflict(LimiterError):
    """A change that the app's current state does not allow (a plan change, or a reconcile
    that another one overtook); nothing was changed."""


class GroupNotFound(LimiterError):
    code = 10010

    def __init__(self, app: str, group: str) -> None:
        super().__init__(f"group {group!r} does not exist in app {app!r}")
        self.app = app
        self.group = group


class GroupExists(LimiterError):
    code = 10021

    def __init__(self, app: str, group: str) -> None:
        super().__init__(f"group {group!r} already exists in app {app!r}")
        self.app = app
        self.group = group


class NotRegistered(LimiterError):
    """Accounts first (``require_registered``): a friend add's requester, a group's owner or
    initial member, or a member of an all-or-nothing add is not a registered account of the
    app; nothing was changed. ``accounts``: every such id of the call."""

    def __init__(self, app: str, accounts: tuple[str, ...]) -> None:
        names = ", ".join(shown(account) for account in accounts[:5])
        more = f" and {len(accounts) - 5} more" if len(accounts) > 5 else ""
        super().__init__(f"not registered accounts of app {app!r}: {names}{more}")
        self.app = app
        self.accounts = accounts


@dataclass(frozen=True)
class Lift:
    """The cheapest catalog item that would raise a limit: an edition or an expansion."""

    kind: Literal["edition", "expansion"]
    id: str
    value: int | None
    price: Decimal


@dataclass(frozen=True)
class Refusal:
    """Why an addition was refused: which limit, for whom (scope and its id), how full it
    is (``current`` of ``maximum``, None = unlimited; for 10038 ``current`` is the number of
    initial members asked for), the IM error code, the app's edition, and the cheapest
    catalog item that would lift the limit (None when nothing would)."""

    code: int
    limit: str
    scope: Scope
    scope_id: str
    current: int
    maximum: int | None
    edition: str
    lift: Lift | None = None

    def describe(self) -> str:
        if self.limit == "package":
            return (
                f"app {self.scope_id!r}: its {self.edition} package lapsed or has not started; "
                f"additions are refused until it is renewed (IM code {self.code})"
            )
        cap = "unlimited" if self.maximum is None else str(self.maximum)
        return (
            f"{self.limit} limit {cap} refuses the addition for {self.scope} "
            f"{self.scope_id!r} (current {self.current}; IM code {self.code})"
        )


class Refused(LimiterError):
    """A limit refused an addition; ``refusal`` (and the same-named attributes) say why.

    ``also`` holds further refusals of the same call (every initial member of a group
    creation that is at groups_per_user, not only the first).
    """

    def __init__(self, refusal: Refusal, also: tuple[Refusal, ...] = ()) -> None:
        others = "".join(f"; also {other.scope} {other.scope_id!r}" for other in also)
        super().__init__(refusal.describe() + others)
        self.refusal = refusal
        self.also = also

    @property
    def code(self) -> int:
        return self.refusal.code

    @property
    def limit(self) -> str:
        return self.refusal.limit

    @property
    def scope(self) -> Scope:
        return self.refusal.scope

    @property
    def scope_id(self) -> str:
        return self.refusal.scope_id

    @property
    def current(self) -> int:
        return self.refusal.current

    @property
    def maximum(self) -> int | None:
        return self.refusal.maximum

    @property
    def edition(self) -> str:
        return self.refusal.edition

    @property
    def lift(self) -> Lift | None:
        return self.refusal.lift


class Suspended(Refused):
    """The app's paid package lapsed (or has not started): additions are refused (IM 60020)."""


class StoreUnavailable(LimiterError):
    """Redis did not answer; under the ``closed`` outage policy nothing was decided."""


def shown(value: object, most: int = 64) -> str:
    """``value`` as a message quotes it: at most ``most`` characters, then an ellipsis (ids
    come from clients, and an answer or a log line must not carry a megabyte of one)."""
    if isinstance(value, str | bytes):
        return repr(value) if len(value) <= most else f"{value[:most]!r}..."
    text = repr(value)
    return text if len(text) <= most else f"{text[:most]}..."
