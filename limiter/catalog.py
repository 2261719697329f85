"""The plan catalog: editions, expansions, group types and metered prices, loaded as data.

Pure: no I/O beyond reading the catalog file once. The shipped default is ``catalog.toml``.
"""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from limiter.errors import ConfigurationError, InvalidRequest, Lift, shown

# Every limit, once: the catalog's editions set each of them.
LimitName = Literal[
    "users", "friends", "groups_per_user", "group_members", "av_chatrooms", "history_days"
]
LIMIT_NAMES: tuple[str, ...] = get_args(LimitName)


def _limit_value(value: Any) -> Any:
    """``"unlimited"`` (TOML has no null) and ``None`` both mean no limit."""
    if value == "unlimited":
        return None
    if isinstance(value, bool):
        raise ValueError("must be a whole number or 'unlimited'")
    return value


LimitValue = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(_limit_value)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GroupType(_Model):
    aliases: tuple[str, ...] = ()
    counts_toward_groups_per_user: bool = True
    av_chatroom: bool = False


class EditionLimits(_Model):
    users: LimitValue
    friends: LimitValue
    groups_per_user: LimitValue
    av_chatrooms: LimitValue
    history_days: LimitValue
    group_members: dict[str, LimitValue]


class Edition(_Model):
    title: str
    paid: bool
    price: Decimal = Field(default=Decimal(0), ge=0)
    included_dau: int = Field(default=0, ge=0)
    limits: EditionLimits


class Raise(_Model):
    limit: LimitName
    value: LimitValue = None
    min_value: int | None = Field(default=None, ge=0)
    max_value: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _value_or_range(self) -> Raise:
        if "value" not in self.model_fields_set and self.min_value is None:
            raise ValueError("give value (a number or 'unlimited') or min_value/max_value")
        return self

    @property
    def chosen_by_buyer(self) -> bool:
        """True when the buyer picks the value (``history_extension``'s days)."""
        return self.min_value is not None


class Expansion(_Model):
    editions: tuple[str, ...]
    raises: Raise
    price: Decimal = Field(ge=0)
    period: Literal["prepaid", "settled"]
    block: int | None = Field(default=None, gt=0)
    per: Literal["peak_dau"] | None = None


class Metered(_Model):
    price: Decimal = Field(ge=0)
    block: int = Field(default=1, gt=0)
    free: int = Field(default=0, ge=0)
    rounding: Literal["ceil", "pro_rata"] = "ceil"


class Catalog(_Model):
    currency: str = "CNY"
    grace_hours: int = Field(default=24, ge=0)
    group_types: dict[str, GroupType]
    editions: dict[str, Edition]
    expansions: dict[str, Expansion] = {}
    metered: dict[str, Metered] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        names: dict[str, str] = {}
        for name, group_type in self.group_types.items():
            for spelling in (name, *group_type.aliases):
                if spelling in names:
                    raise ValueError(f"group_types.{name}: name {spelling!r} is used twice")
                names[spelling] = name
        for edition_name, edition in self.editions.items():
            known = set(self.group_types)
            given = set(edition.limits.group_members)
            if given != known:
                missing = ", ".join(sorted(known - given)) or "-"
                extra = ", ".join(sorted(given - known)) or "-"
                raise ValueError(
                    f"editions.{edition_name}.limits.group_members: must name every group type "
                    f"(missing: {missing}; unknown: {extra})"
                )
        for kind, expansion in self.expansions.items():
            for edition_name in expansion.editions:
                if edition_name not in self.editions:
                    raise ValueError(
                        f"expansions.{kind}.editions: unknown edition {edition_name!r}"
                    )
        return self

    # -- look-ups -------------------------------------------------------------------------

    def group_type(self, name: str) -> str:
        """The canonical name of a group type given by name or alias."""
        for canonical, group_type in self.group_types.items():
            if name == canonical or name in group_type.aliases:
                return canonical
        known = ", ".join(self.group_types)
        raise InvalidRequest("type", f"unknown group type {shown(name)} (known: {known})")

    def edition(self, name: str) -> Edition:
        try:
            return self.editions[name]
        except KeyError:
            known = ", ".join(self.editions)
            raise InvalidRequest(
                "edition", f"unknown edition {shown(name)} (known: {known})"
            ) from None

    def expansion(self, kind: str) -> Expansion:
        try:
            return self.expansions[kind]
        except KeyError:
            known = ", ".join(self.expansions)
            raise InvalidRequest(
                "kind", f"unknown expansion {shown(kind)} (known: {known})"
            ) from None

    def lift(
        self, limit: str, edition: str, maximum: int | None, group_type: str | None = None
    ) -> Lift | None:
        """The cheapest edition or expansion that would take ``limit`` above ``maximum``.

        An expansion only counts where the current edition may buy it; otherwise a paid
        edition whose own limit is higher is the way up.
        """
        if maximum is None:
            return None
        candidates: list[Lift] = []
        for kind, expansion in self.expansions.items():
            if expansion.raises.limit != limit or edition not in expansion.editions:
                continue
            value = (
                expansion.raises.max_value
                if expansion.raises.chosen_by_buyer
                else (expansion.raises.value)
            )
            if value is None or value > maximum:
                candidates.append(Lift("expansion", kind, value, expansion.price))
        for name, other in self.editions.items():
            if name == edition or not other.paid:
                continue
            value = _edition_limit(other, limit, group_type)
            if value is None or value > maximum:
                candidates.append(Lift("edition", name, value, other.price))
        return min(candidates, key=lambda lift: lift.price, default=None)


def _edition_limit(edition: Edition, limit: str, group_type: str | None) -> int | None:
    if limit == "group_members":
        if group_type is None:
            raise InvalidRequest("group_type", "group_members needs a group type")
        return edition.limits.group_members[group_type]
    value: int | None = getattr(edition.limits, limit)
    return value


def edition_limit(catalog: Catalog, edition: str, limit: str, group_type: str | None) -> int | None:
    """One limit of one edition, as the catalog gives it (no expansions, no overrides)."""
    return _edition_limit(catalog.edition(edition), limit, group_type)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog (TOML or JSON); the shipped one when ``path`` is None.

    A bad catalog raises :class:`ConfigurationError` naming the field, e.g.
    ``editions.pro.limits.friends: Input should be greater than or equal to 0``.
    """
    if path is None:
        text = resources.files("limiter").joinpath("catalog.toml").read_text(encoding="utf-8")
        source = "limiter/catalog.toml"
        suffix = ".toml"
    else:
        file = Path(path)
        source = str(file)
        suffix = file.suffix.lower()
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"plan catalog {source}: cannot read: {exc}") from exc
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"plan catalog {source}: not valid {suffix[1:]}: {exc}") from exc
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"plan catalog {source}: {problems}") from exc
