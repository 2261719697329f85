"""Settings from the environment (prefix ``LIMITER_``), validated once at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from limiter.catalog import LimitName
from limiter.errors import ConfigurationError
from limiter.urls import ClusterAddress, is_cluster

Mode = Literal["enforce", "shadow"]
# Shortest admin token accepted: an empty or short one would be guessable.
MIN_ADMIN_TOKEN_LENGTH = 16


class Settings(BaseSettings):
    """Every setting; each is read from ``LIMITER_<NAME>`` (e.g. ``LIMITER_REDIS_URL``)."""

    # hide_input_in_errors: a bad LIMITER_ADMIN_TOKENS must not print the tokens.
    model_config = SettingsConfigDict(
        env_prefix="LIMITER_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="redis://, rediss://, unix://, redis+cluster://host:port[,host:port...], "
        "rediss+cluster://... (database 0) or memory:// (an in-process store)",
    )
    key_prefix: str = Field(default="limiter", description="prefix of every Redis key")
    timezone: str = Field(default="Asia/Shanghai", description="billing timezone (IANA name)")
    cache_seconds: float = Field(
        default=1.0, ge=0, le=60, description="how stale a worker's copy of a plan may be"
    )
    policies: dict[LimitName, Mode] = Field(
        default_factory=dict,
        description='per-limit mode, JSON, e.g. {"group_members": "shadow"}; default enforce',
    )
    outage: Literal["closed", "open"] = Field(
        default="closed", description="when Redis is down: closed = raise, open = allow and log"
    )
    catalog_path: Path | None = Field(default=None, description="a plan catalog file to load")
    default_edition: str = Field(default="trial", description="edition of an app never set up")
    max_batch: int = Field(
        default=10000, ge=1, description="most ids one call may name (one script must stay short)"
    )
    audit_entries: int = Field(
        default=1000, ge=1, le=100_000, description="admin changes kept per app (newest)"
    )
    late_seconds: int = Field(
        default=600,
        ge=0,
        le=86_400,
        description="how long after a billing day ends its logins and bandwidth still count",
    )
    metering_retention_days: int = Field(
        default=400, ge=396, description="days a month's metering is kept after it ends"
    )
    admin_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='admin API bearer tokens, JSON {"name": "token"}; the name is audited',
    )
    callback_token: SecretStr | None = Field(
        default=None, description="the IM callback's signing token; unset = unauthenticated"
    )
    marker_check_seconds: float = Field(
        default=30.0,
        ge=0,
        le=86_400,
        description="how often each engine re-reads the data-set marker that detects a flushed "
        "Redis (also on its first request and after an outage)",
    )
    require_registered: bool = Field(
        default=True,
        description="accounts first: friend adds, group creations and member adds name only "
        "registered accounts (others get not_registered), and only their logins count in DAU",
    )
    user_id_max_bytes: int = Field(default=32, ge=1, le=1024)
    group_id_max_bytes: int = Field(default=48, ge=1, le=1024)

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if is_cluster(value):
            try:
                ClusterAddress.parse(value)
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        elif not value.startswith(("redis://", "rediss://", "unix://", "memory://")):
            raise ValueError(
                "must start with redis://, rediss://, unix://, redis+cluster://, "
                "rediss+cluster:// or memory://"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("admin_tokens")
    @classmethod
    def _usable_tokens(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, token in value.items():
            if not name or len(token.get_secret_value()) < MIN_ADMIN_TOKEN_LENGTH:
                raise ValueError(
                    f"token {name!r}: names must be non-empty, tokens at least "
                    f"{MIN_ADMIN_TOKEN_LENGTH} characters"
                )
        return value

    def mode(self, limit: str) -> Mode:
        for name, mode in self.policies.items():
            if name == limit:
                return mode
        return "enforce"


def load_settings(settings: Settings | None = None, **overrides: Any) -> Settings:
    """``settings``, or the ``LIMITER_*`` environment read now with ``overrides`` on top; a
    bad value raises :class:`ConfigurationError` naming the variable."""
    if settings is not None:
        if overrides:
            raise TypeError("load_settings: give settings or overrides, not both")
        return settings
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"LIMITER_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"settings: {problems}") from None
