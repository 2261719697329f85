"""An app's plan state (edition, paid periods, expansions, overrides) and its storage form.

Pure: the store keeps the state as one Redis hash of JSON fields; this module turns that hash
into a :class:`PlanState` and back, one field per independent change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from limiter.periods import Period

# The most months one purchase (an edition, a renewal, an expansion) may cover.
MAX_MONTHS = 120
EDITION_FIELD = "edition"
_EXPANSION = "expansion:"
_APP_OVERRIDE = "override:app:"
_USER_OVERRIDE = "override:user:"
_GROUP_OVERRIDE = "override:group:"


@dataclass(frozen=True)
class Override:
    """A custom limit: ``value`` None is unlimited; ``expires_at`` None never expires."""

    value: int | None
    expires_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class Purchase:
    """One purchase of a paid edition: ``months`` periods bought on ``purchased_on`` (a date in
    the billing timezone). The bill of the month holding that date charges them."""

    purchased_on: date
    months: int


@dataclass(frozen=True)
class ExpansionGrant:
    """One expansion bought for an app: its kind, paid span and (history) chosen days."""

    id: str
    kind: str
    periods: tuple[Period, ...]
    days: int | None = None
    # The bill's record of a grant removed early: its last day in effect.
    ended_on: date | None = None

    @property
    def starts_on(self) -> date:
        return self.periods[0].starts_on

    @property
    def ends_on(self) -> date:
        return self.periods[-1].ends_on

    @property
    def purchased_on(self) -> date:
        """An expansion's periods start on the day it was bought."""
        return self.periods[0].starts_on

    def active_on(self, day: date) -> bool:
        return any(period.contains(day) for period in self.in_effect())

    def in_effect(self) -> tuple[Period, ...]:
        """The periods as they ran: cut at ``ended_on`` when the grant was removed early."""
        if self.ended_on is None:
            return self.periods
        return tuple(
            Period(p.starts_on, min(p.ends_on, self.ended_on))
            for p in self.periods
            if p.starts_on <= self.ended_on
        )


@dataclass(frozen=True)
class LedgerEntry:
    """One purchase-related change, in the app's append-only ledger (the bill replays it, so
    a later change never rewrites an earlier month's bill).

    ``edition``: an edition set on ``on`` (its ``periods`` replace the paid days from ``on``);
    ``renewal``: periods added; ``expansion``: ``grant`` bought; ``removal``: the grant
    ``removed`` stops after the day before ``on``. ``purchase`` is what was bought, if anything.
    ``baseline``: the first entry of an app set up before its ledger existed, holding the
    edition and expansions it had then (``plan``).
    """

    event: Literal["baseline", "edition", "renewal", "expansion", "removal"]
    on: date
    edition: str | None = None
    periods: tuple[Period, ...] = ()
    purchase: Purchase | None = None
    grant: ExpansionGrant | None = None
    removed: str | None = None
    plan: PlanState | None = None


@dataclass(frozen=True)
class PlanState:
    """Everything an operator set for one app. ``periods`` are the paid edition's periods,
    ``purchases`` the purchases that bought them (a renewal is one more purchase)."""

    edition: str
    periods: tuple[Period, ...] = ()
    purchases: tuple[Purchase, ...] = ()
    expansions: tuple[ExpansionGrant, ...] = ()
    app_overrides: Mapping[str, Override] = field(default_factory=dict)
    user_overrides: Mapping[tuple[str, str], Override] = field(default_factory=dict)
    group_overrides: Mapping[str, Override] = field(default_factory=dict)


# -- storage form: hash field names and JSON values -------------------------------------------


def edition_field_value(
    edition: str, periods: tuple[Period, ...], purchases: tuple[Purchase, ...]
) -> str:
    return json.dumps(
        {
            "edition": edition,
            "periods": [_period_json(p) for p in periods],
            "purchases": [[p.purchased_on.isoformat(), p.months] for p in purchases],
        }
    )


def expansion_field(grant_id: str) -> str:
    return _EXPANSION + grant_id


def expansion_field_value(grant: ExpansionGrant) -> str:
    return json.dumps(
        {
            "kind": grant.kind,
            "periods": [_period_json(p) for p in grant.periods],
            "days": grant.days,
        }
    )


def override_field(limit: str, *, user: str | None = None, group: str | None = None) -> str:
    # The entity id comes last, so an id containing ':' cannot be mistaken for the limit.
    if user is not None:
        return f"{_USER_OVERRIDE}{limit}:{user}"
    if group is not None:
        return f"{_GROUP_OVERRIDE}{limit}:{group}"
    return _APP_OVERRIDE + limit


def override_field_value(override: Override) -> str:
    expires = None if override.expires_at is None else override.expires_at.isoformat()
    return json.dumps({"value": override.value, "expires_at": expires})


def decode(fields: Mapping[str, str], default_edition: str) -> PlanState:
    """Build a plan state from the stored hash; an empty hash is an app on its default edition."""
    edition = default_edition
    periods: tuple[Period, ...] = ()
    purchases: tuple[Purchase, ...] = ()
    expansions: list[ExpansionGrant] = []
    app_overrides: dict[str, Override] = {}
    user_overrides: dict[tuple[str, str], Override] = {}
    group_overrides: dict[str, Override] = {}
    for name, raw in fields.items():
        value = json.loads(raw)
        if name == EDITION_FIELD:
            edition = value["edition"]
            periods = tuple(_period(p) for p in value["periods"])
            purchases = tuple(
                Purchase(date.fromisoformat(on), months) for on, months in value["purchases"]
            )
        elif name.startswith(_EXPANSION):
            expansions.append(
                ExpansionGrant(
                    id=name[len(_EXPANSION) :],
                    kind=value["kind"],
                    periods=tuple(_period(p) for p in value["periods"]),
                    days=value["days"],
                )
            )
        elif name.startswith(_APP_OVERRIDE):
            app_overrides[name[len(_APP_OVERRIDE) :]] = _override(value)
        elif name.startswith(_USER_OVERRIDE):
            limit, user = name[len(_USER_OVERRIDE) :].split(":", 1)
            user_overrides[(user, limit)] = _override(value)
        elif name.startswith(_GROUP_OVERRIDE):
            _, group = name[len(_GROUP_OVERRIDE) :].split(":", 1)
            group_overrides[group] = _override(value)
    expansions.sort(key=lambda grant: (grant.starts_on, grant.id))
    return PlanState(
        edition=edition,
        periods=periods,
        purchases=purchases,
        expansions=tuple(expansions),
        app_overrides=app_overrides,
        user_overrides=user_overrides,
        group_overrides=group_overrides,
    )


def _period_json(period: Period) -> list[str]:
    return [period.starts_on.isoformat(), period.ends_on.isoformat()]


def _period(raw: list[str]) -> Period:
    return Period(date.fromisoformat(raw[0]), date.fromisoformat(raw[1]))


def _override(raw: dict[str, object]) -> Override:
    expires = raw["expires_at"]
    value = raw["value"]
    return Override(
        value=value if isinstance(value, int) else None,
        expires_at=datetime.fromisoformat(expires) if isinstance(expires, str) else None,
    )


# -- the ledger's storage form: one JSON object per entry ----------------------------------------


def ledger_entry_value(entry: LedgerEntry) -> str:
    grant = entry.grant
    purchase = entry.purchase
    return json.dumps(
        {
            "event": entry.event,
            "on": entry.on.isoformat(),
            "edition": entry.edition,
            "periods": [_period_json(p) for p in entry.periods],
            "purchase": None
            if purchase is None
            else [purchase.purchased_on.isoformat(), purchase.months],
            "grant": None
            if grant is None
            else {"id": grant.id, "kind": grant.kind, "days": grant.days},
            "removed": entry.removed,
        }
    )


def decode_ledger(raws: list[str]) -> tuple[LedgerEntry, ...]:
    """The ledger's entries, oldest first. An expansion's periods are the entry's periods."""
    entries = []
    for raw in raws:
        value = json.loads(raw)
        if value["event"] == "baseline":
            fields = {name: json.dumps(field) for name, field in value["fields"].items()}
            state = decode(fields, "")
            entries.append(LedgerEntry("baseline", date.fromisoformat(value["on"]), plan=state))
            continue
        periods = tuple(_period(p) for p in value["periods"])
        bought = value["purchase"]
        purchase = None if bought is None else Purchase(date.fromisoformat(bought[0]), bought[1])
        grant = None
        if value["grant"] is not None:
            g = value["grant"]
            grant = ExpansionGrant(g["id"], g["kind"], periods, g["days"])
        entries.append(
            LedgerEntry(
                event=value["event"],
                on=date.fromisoformat(value["on"]),
                edition=value["edition"],
                periods=periods,
                purchase=purchase,
                grant=grant,
                removed=value["removed"],
            )
        )
    return tuple(entries)
