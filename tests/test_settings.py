"""Settings from LIMITER_* variables, start-up errors that name the field, the memory store."""

from __future__ import annotations

import asyncio
import traceback

import pytest

from limiter import AsyncLimiter, ConfigurationError, Limiter, Settings
from tests.conftest import APP


def test_settings_come_from_limiter_variables(monkeypatch):
    monkeypatch.setenv("LIMITER_REDIS_URL", "unix:///run/redis.sock")
    monkeypatch.setenv("LIMITER_KEY_PREFIX", "im")
    monkeypatch.setenv("LIMITER_TIMEZONE", "UTC")
    monkeypatch.setenv("LIMITER_CACHE_SECONDS", "0.5")
    monkeypatch.setenv("LIMITER_POLICIES", '{"friends": "shadow"}')
    monkeypatch.setenv("LIMITER_OUTAGE", "open")
    monkeypatch.setenv("LIMITER_DEFAULT_EDITION", "pro")
    settings = Settings()
    assert settings.redis_url == "unix:///run/redis.sock"
    assert (settings.key_prefix, settings.timezone, settings.cache_seconds) == ("im", "UTC", 0.5)
    assert settings.mode("friends") == "shadow" and settings.mode("users") == "enforce"
    assert (settings.outage, settings.default_edition) == ("open", "pro")


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("LIMITER_REDIS_URL", "http://x", "LIMITER_REDIS_URL"),
        ("LIMITER_TIMEZONE", "Mars/Olympus", "LIMITER_TIMEZONE"),
        ("LIMITER_CACHE_SECONDS", "-1", "LIMITER_CACHE_SECONDS"),
        ("LIMITER_POLICIES", '{"friends": "maybe"}', "LIMITER_POLICIES"),
        ("LIMITER_OUTAGE", "sometimes", "LIMITER_OUTAGE"),
    ],
)
def test_bad_settings_fail_at_start_naming_the_variable(monkeypatch, name, value, named):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=named):
        Limiter.from_settings()


def test_a_bad_catalog_file_fails_at_start(tmp_path):
    catalog = tmp_path / "plans.toml"
    catalog.write_text("currency = 'CNY'\n[group_types.Private]\n[editions]\n[expansions]\n")
    settings = Settings(redis_url="memory://bad-catalog", catalog_path=catalog, default_edition="x")
    with pytest.raises(ConfigurationError, match="default_edition"):
        Limiter.from_settings(settings)


def test_memory_store_is_shared_by_sync_and_async_engines_in_one_process():
    settings = Settings(redis_url="memory://shared-test", cache_seconds=0)
    sync_engine = Limiter.from_settings(settings)
    sync_engine.register_users(APP, ["a", "b"])

    async def read() -> int:
        engine = AsyncLimiter.from_settings(settings)
        users = (await engine.usage(APP)).users
        await engine.aclose()
        return users

    assert asyncio.run(read()) == 2
    other = Limiter.from_settings(Settings(redis_url="memory://another", cache_seconds=0))
    assert other.usage(APP).users == 0


def test_testing_helpers_give_isolated_engines_on_a_manual_clock():
    from datetime import UTC, date, datetime, timedelta

    from limiter.testing import ManualClock, memory_async_limiter, memory_limiter

    clock = ManualClock(datetime(2026, 12, 19, 16, 0, tzinfo=UTC))  # Dec 20, 00:00 Beijing
    first = memory_limiter(clock=clock)
    second = memory_limiter(clock=clock, policies={"users": "shadow"})
    first.set_edition(APP, "pro", purchased_on=date(2026, 11, 20))  # through Dec 19
    assert first.limits(APP).status == "grace"
    clock.advance(timedelta(days=1))
    assert first.limits(APP).status == "suspended"
    assert second.plan(APP).edition == "trial"
    assert second.settings.mode("users") == "shadow"
    assert asyncio.run(memory_async_limiter().usage(APP)).users == 0


def test_a_bad_admin_token_setting_never_shows_the_tokens(monkeypatch):
    good, short = "a-good-secret-0123456789", "tiny-secret"
    monkeypatch.setenv("LIMITER_ADMIN_TOKENS", f'{{"ops": "{good}", "bot": "{short}"}}')
    with pytest.raises(ConfigurationError) as caught:
        Limiter.from_settings()
    shown = "".join(traceback.format_exception(caught.value))
    assert "LIMITER_ADMIN_TOKENS" in shown and "'bot'" in shown
    assert good not in shown and short not in shown
