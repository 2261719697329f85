"""An app's effective limits at an instant: edition, expansions, app and entity overrides.

Pure: takes the catalog, the app's plan state, the instant and the billing timezone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from limiter.catalog import LIMIT_NAMES, Catalog
from limiter.errors import ConfigurationError, Lift
from limiter.periods import Period, contiguous_span, day_end, local_date
from limiter.plan import Override, PlanState

# The limits with one value per app (group_members has one per group type instead).
APP_LIMITS: tuple[str, ...] = tuple(name for name in LIMIT_NAMES if name != "group_members")


class Status(StrEnum):
    ACTIVE = "active"
    GRACE = "grace"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class Limit:
    """One effective limit: ``value`` None is unlimited; ``source`` says what set it."""

    value: int | None
    source: Literal["edition", "expansion", "override"]
    source_id: str

    def allows(self, count: int) -> bool:
        """Whether an entity holding ``count`` may take one more."""
        return self.value is None or count < self.value


@dataclass(frozen=True)
class EditionState:
    edition: str
    status: Status
    period: Period | None


@dataclass(frozen=True)
class EffectiveLimits:
    """An app's limits at one instant, with the entity overrides that were active then."""

    edition: str
    status: Status
    period: Period | None
    app: Mapping[str, Limit]
    group_members: Mapping[str, Limit]
    user_overrides: Mapping[tuple[str, str], Override] = field(default_factory=dict)
    group_overrides: Mapping[str, Override] = field(default_factory=dict)

    def for_user(self, user: str, limit: str) -> Limit:
        """``friends`` or ``groups_per_user`` of one user."""
        override = self.user_overrides.get((user, limit))
        if override is not None:
            return Limit(override.value, "override", f"user:{user}")
        return self.app[limit]

    def for_group(self, group: str, group_type: str) -> Limit:
        """``group_members`` of one group of the given (canonical) type."""
        override = self.group_overrides.get(group)
        if override is not None:
            return Limit(override.value, "override", f"group:{group}")
        try:
            return self.group_members[group_type]
        except KeyError:
            raise ConfigurationError(
                f"group {group!r} is of type {group_type!r}, which the catalog does not define "
                "(a catalog must keep every type its groups were created with)"
            ) from None

    def lift(
        self, catalog: Catalog, limit: str, found: Limit, group_type: str | None = None
    ) -> Lift | None:
        """What would raise ``found``; None when an override set it (buying would not help)."""
        if found.source == "override":
            return None
        return catalog.lift(limit, self.edition, found.value, group_type)


def edition_state(catalog: Catalog, plan: PlanState, now: datetime, tz: ZoneInfo) -> EditionState:
    """The edition's status: a free edition is always active; a paid one by its periods.

    A paid edition is ``active`` on its paid days, in ``grace`` for ``grace_hours`` after the
    last paid day ends, then ``suspended``; also ``suspended`` before its first period starts.
    """
    if not catalog.edition(plan.edition).paid:
        return EditionState(plan.edition, Status.ACTIVE, None)
    today = local_date(now, tz)
    span = contiguous_span(plan.periods, today)
    if span is None:
        return EditionState(plan.edition, Status.SUSPENDED, None)
    if span.contains(today):
        return EditionState(plan.edition, Status.ACTIVE, span)
    status = Status.GRACE if now < _grace_ends(catalog, span, tz) else Status.SUSPENDED
    return EditionState(plan.edition, status, span)


def _grace_ends(catalog: Catalog, span: Period, tz: ZoneInfo) -> datetime:
    # Elapsed hours, not wall-clock ones: add in UTC so a DST change does not stretch grace.
    return day_end(span.ends_on, tz).astimezone(UTC) + timedelta(hours=catalog.grace_hours)


def unchanged_until(catalog: Catalog, plan: PlanState, now: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after ``now`` at which :func:`resolve` may answer differently: the
    end of the billing day (periods and expansions count whole days), the end of grace, or
    the next override expiry. Until then a resolution at ``now`` can be reused as it is."""
    today = local_date(now, tz)
    changes = [day_end(today, tz)]
    if catalog.edition(plan.edition).paid:
        span = contiguous_span(plan.periods, today)
        if span is not None:
            changes.append(_grace_ends(catalog, span, tz))
    for overrides in (plan.app_overrides, plan.user_overrides, plan.group_overrides):
        changes += (o.expires_at for o in overrides.values() if o.expires_at is not None)
    return min(change for change in changes if change > now)


def resolve(catalog: Catalog, plan: PlanState, now: datetime, tz: ZoneInfo) -> EffectiveLimits:
    """The app's effective limits at ``now``."""
    state = edition_state(catalog, plan, now, tz)
    base = catalog.edition(plan.edition).limits
    app = {name: Limit(getattr(base, name), "edition", plan.edition) for name in APP_LIMITS}
    members = {
        group_type: Limit(value, "edition", plan.edition)
        for group_type, value in base.group_members.items()
    }
    today = local_date(now, tz)
    for grant in plan.expansions:
        expansion = catalog.expansions.get(grant.kind)
        if expansion is None or plan.edition not in expansion.editions:
            continue
        if not grant.active_on(today):
            continue
        raised = grant.days if expansion.raises.chosen_by_buyer else expansion.raises.value
        candidate = Limit(raised, "expansion", grant.kind)
        if expansion.raises.limit == "group_members":
            for group_type, current in members.items():
                if current.value is not None and _higher(candidate, current):
                    members[group_type] = candidate
        elif _higher(candidate, app[expansion.raises.limit]):
            app[expansion.raises.limit] = candidate
    for name, override in plan.app_overrides.items():
        if not override.active(now):
            continue
        found = Limit(override.value, "override", "app")
        if name == "group_members":
            limited = [t for t, v in base.group_members.items() if v is not None]
            members.update({group_type: found for group_type in limited})
        else:
            app[name] = found
    return EffectiveLimits(
        edition=plan.edition,
        status=state.status,
        period=state.period,
        app=app,
        group_members=members,
        user_overrides={k: o for k, o in plan.user_overrides.items() if o.active(now)},
        group_overrides={k: o for k, o in plan.group_overrides.items() if o.active(now)},
    )


def _higher(candidate: Limit, current: Limit) -> bool:
    if current.value is None:
        return False
    return candidate.value is None or candidate.value > current.value
