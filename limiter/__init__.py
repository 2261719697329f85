"""limiter: the plan limits of a hosted IM service, enforced atomically in Redis.

Build an engine with :meth:`AsyncLimiter.from_settings` (or :meth:`Limiter.from_settings` for
blocking code); every adding operation is one Lua script, one round trip.
"""

from limiter.catalog import Catalog, load_catalog
from limiter.clock import Clock, SystemClock
from limiter.core import ACTION_PARAMETERS, Reservation
from limiter.decorator import guard
from limiter.engine import AsyncLimiter, Limiter
from limiter.errors import (
    ConfigurationError,
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    Lift,
    LimiterError,
    PlanConflict,
    Refusal,
    Refused,
    StoreUnavailable,
    Suspended,
)
from limiter.limits import EffectiveLimits, Limit, Status
from limiter.plan import ExpansionGrant, Override, PlanState
from limiter.results import (
    BatchResult,
    DeletedUser,
    DeleteResult,
    FriendItem,
    GroupCreated,
    GroupDestroyed,
    GroupUsage,
    Item,
    MembersResult,
    Outcome,
    Usage,
    UserUsage,
)
from limiter.settings import Settings
from limiter.store import AsyncStore, SyncStore

__all__ = [
    "ACTION_PARAMETERS",
    "AsyncLimiter",
    "AsyncStore",
    "BatchResult",
    "Catalog",
    "Clock",
    "ConfigurationError",
    "DeleteResult",
    "DeletedUser",
    "EffectiveLimits",
    "ExpansionGrant",
    "FriendItem",
    "GroupCreated",
    "GroupDestroyed",
    "GroupExists",
    "GroupNotFound",
    "GroupUsage",
    "InvalidRequest",
    "Item",
    "Lift",
    "Limit",
    "Limiter",
    "LimiterError",
    "MembersResult",
    "Outcome",
    "Override",
    "PlanConflict",
    "PlanState",
    "Refusal",
    "Refused",
    "Reservation",
    "Settings",
    "Status",
    "StoreUnavailable",
    "Suspended",
    "SyncStore",
    "SystemClock",
    "Usage",
    "UserUsage",
    "guard",
    "load_catalog",
]
