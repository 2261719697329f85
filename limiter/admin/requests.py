"""What admin requests carry: their bodies and query strings (an unknown field is refused),
and the engine they act on."""

import re
from datetime import date
from typing import Annotated, Literal

from fastapi import Depends
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from limiter.engine import AsyncLimiter
from limiter.fastapi import get_limiter
from limiter.plan import MAX_MONTHS

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

Engine = Annotated[AsyncLimiter, Depends(get_limiter)]
UserLimit = Literal["friends", "groups_per_user"]


# pydantic alone also takes a Unix time for an instant, and a datetime at midnight for a date.
def _iso_date(value: object) -> object:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("must be a date as YYYY-MM-DD")


def _iso_instant(value: object) -> object:
    if isinstance(value, str):
        return value
    raise ValueError("must be an ISO 8601 instant with its offset")


Day = Annotated[date, BeforeValidator(_iso_date)]
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_instant)]
Months = Annotated[StrictInt, Field(ge=1, le=MAX_MONTHS)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditionChange(_Strict):
    """Put the app on an edition; a paid one from `purchased_on` for `months` periods."""

    edition: str = Field(examples=["pro"])
    purchased_on: Day | None = None
    months: Months = 1


class Renewal(_Strict):
    """Extend the paid edition by `months` periods."""

    months: Months = 1


class ExpansionPurchase(_Strict):
    """An expansion bought on `purchased_on` for `months` periods; `days` only for
    `history_extension` (8..360)."""

    kind: str = Field(examples=["group_members_2000"])
    purchased_on: Day
    months: Months = 1
    days: StrictInt | None = None


class OverrideChange(_Strict):
    """A custom limit: `value` null is unlimited; `expires_at` null never expires."""

    value: Annotated[StrictInt, Field(ge=0)] | None
    expires_at: Instant | None = None


class AuditQuery(_Strict):
    """The audit log's query: how many entries, newest first."""

    limit: int = Field(default=50, ge=1, le=1000, description="how many entries, newest first")


class MonthQuery(_Strict):
    """A month as YYYY-MM; the current month in the billing timezone when omitted."""

    month: str | None = Field(
        default=None, description="YYYY-MM; default: this month in the billing timezone"
    )
