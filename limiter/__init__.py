"""limiter: the plan limits of a hosted IM service, enforced atomically in Redis.

Build an engine with :meth:`AsyncLimiter.from_settings` (or :meth:`Limiter.from_settings` for
blocking code); every adding operation is one Lua script, one round trip. What a user needs is
here; the integrations are :mod:`limiter.fastapi`, :mod:`limiter.admin`,
:mod:`limiter.callbacks` and :mod:`limiter.metrics`, test helpers :mod:`limiter.testing`, and
the layers beneath are importable from their own modules (``docs/architecture.md``).
"""

from limiter.billing import Bill, BillItem
from limiter.catalog import Catalog, load_catalog
from limiter.clock import Clock, SystemClock
from limiter.decorator import guard
from limiter.engine import AsyncLimiter, Limiter
from limiter.errors import (
    ConfigurationError,
    GroupExists,
    GroupNotFound,
    InvalidRequest,
    Lift,
    LimiterError,
    NotRegistered,
    OutsideRetention,
    PlanConflict,
    Refusal,
    Refused,
    StoreUnavailable,
    Suspended,
)
from limiter.limits import EffectiveLimits, Limit, Status
from limiter.metering import LoginRecorded, Month, MonthlyUsage
from limiter.plan import ExpansionGrant, Override, PlanState
from limiter.reconcile import AccountRecord, FriendRecord, GroupRecord, ReconcileReport
from limiter.reservations import Reservation
from limiter.results import (
    AuditEntry,
    BatchResult,
    DataStatus,
    DeletedUser,
    DeleteResult,
    FriendItem,
    GroupCreated,
    GroupDestroyed,
    GroupUsage,
    Item,
    MembersResult,
    Outcome,
    OverLimit,
    Usage,
    UserUsage,
)
from limiter.settings import Settings
from limiter.store import AsyncStore, SyncStore

__all__ = [
    "AccountRecord",
    "AsyncLimiter",
    "AsyncStore",
    "AuditEntry",
    "BatchResult",
    "Bill",
    "BillItem",
    "Catalog",
    "Clock",
    "ConfigurationError",
    "DataStatus",
    "DeleteResult",
    "DeletedUser",
    "EffectiveLimits",
    "ExpansionGrant",
    "FriendItem",
    "FriendRecord",
    "GroupCreated",
    "GroupDestroyed",
    "GroupExists",
    "GroupNotFound",
    "GroupRecord",
    "GroupUsage",
    "InvalidRequest",
    "Item",
    "Lift",
    "Limit",
    "Limiter",
    "LimiterError",
    "LoginRecorded",
    "MembersResult",
    "Month",
    "MonthlyUsage",
    "NotRegistered",
    "Outcome",
    "OutsideRetention",
    "OverLimit",
    "Override",
    "PlanConflict",
    "PlanState",
    "ReconcileReport",
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
