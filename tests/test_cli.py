"""The ``limiter`` console command: real output of each subcommand on an in-process store, its
error exits, and one run of the installed module against the real Redis server.

The November of app 1400000001 (Beijing time), set up through the engine on the days it happens:

- accounts: alice, bob, carol and dave, registered on Nov 2 before anything else (accounts
  first: only accounts' logins count and only accounts are related).
- logins: Nov 2 alice, bob (2); Nov 5 alice, bob, carol, dave (4); Nov 9 alice (1);
  Nov 20 alice, bob, carol (3). Peak DAU 4 on Nov 5.
- pro bought Nov 3 (999); history_extension (30 days) bought Nov 5: 500 per started 100,000
  of the peak DAU, so 1 block; group_members_2000 bought Nov 10 (500).
- groups: g1 created Nov 5, g2 Nov 9 (peak 2 on Nov 9), g1 destroyed Nov 20.
- bandwidth: Nov 10 peaks at 12.5 Mbps (then 8), Nov 12 at 3: 13 + 3 = 16 Mbps-days at 2.
- the command runs on Nov 26, 12:00.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from limiter import Limiter, Settings
from limiter.cli import main, source_format_of
from limiter.schemas import BillView
from limiter.testing import ManualClock, memory_limiter
from tests.conftest import REDIS_URL, real_redis_or_skip

BEIJING = timezone(timedelta(hours=8))
APP = "1400000001"
OTHER_APP = "1400000002"
COLUMNS = 72
# 999 (pro) + 500 (group_members_2000) + 500 (history_extension, 1 block) + 16 x 2 (bandwidth)
NOVEMBER_TOTAL = 999 + 500 + 500 + (13 + 3) * 2


def at(clock: ManualClock, day: int, hour: int = 12) -> None:
    clock.set(datetime(2026, 11, day, hour, tzinfo=BEIJING))


def set_up_november(engine: Limiter, clock: ManualClock) -> None:
    at(clock, 2)
    engine.register_users(APP, ["alice", "bob", "carol", "dave"])
    for user in ("alice", "bob"):
        engine.record_login(APP, user)
    at(clock, 3)
    engine.set_edition(APP, "pro", purchased_on=date(2026, 11, 3))
    at(clock, 5)
    for user in ("alice", "bob", "carol", "dave"):
        engine.record_login(APP, user)
    engine.add_expansion(APP, "history_extension", purchased_on=date(2026, 11, 5), days=30)
    engine.create_group(APP, "g1", "Public", owner="alice", members=["bob"])
    at(clock, 9)
    engine.record_login(APP, "alice")
    engine.create_group(APP, "g2", "Private", owner="bob")
    at(clock, 10)
    engine.add_expansion(APP, "group_members_2000", purchased_on=date(2026, 11, 10))
    engine.record_bandwidth(APP, "12.5")
    engine.record_bandwidth(APP, 8)
    at(clock, 12)
    engine.record_bandwidth(APP, 3)
    at(clock, 20)
    for user in ("alice", "bob", "carol"):
        engine.record_login(APP, user)
    engine.destroy_group(APP, "g1")
    at(clock, 26)


@pytest.fixture(autouse=True)
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A known terminal width (shutil.get_terminal_size reads COLUMNS first)."""
    monkeypatch.setenv("COLUMNS", str(COLUMNS))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 26, 12, 0, tzinfo=BEIJING))


@pytest.fixture
def engine(clock: ManualClock) -> Iterator[Limiter]:
    engine = memory_limiter(clock=clock)
    set_up_november(engine, clock)
    yield engine
    engine.close()


def run(engine: Limiter, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv), limiter=engine)
    out, err = capsys.readouterr()
    return status, out, err


def chart_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line[:5] == "2026-" and line[10:12] == "  "]


# -- usage ------------------------------------------------------------------------------------


def test_usage_prints_the_peaks_and_one_bar_per_day_up_to_today(
    engine: Limiter, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(engine, capsys, "usage", APP)

    assert (status, err) == (0, "")
    assert "usage of 2026-11 in Asia/Shanghai, as of 2026-11-26" in out
    assert "peak DAU             4  on 2026-11-05" in out
    assert "peak groups          2  on 2026-11-09" in out
    assert "days with logins     4" in out
    assert "bandwidth peak days  2  highest 12.5 Mbps on 2026-11-10" in out
    lines = chart_lines(out)
    assert [line[:10] for line in lines] == [f"2026-11-{day:02d}" for day in range(1, 27)]
    counts = {line[:10]: int(line.rsplit(" ", 1)[1]) for line in lines}
    logins = {"2026-11-02": 2, "2026-11-05": 4, "2026-11-09": 1, "2026-11-20": 3}
    assert counts == {day: logins.get(day, 0) for day in counts}
    # The bar is 72 - 10 (date) - 4 (gaps) - 1 (count) = 57 cells; the peak (4) fills it and
    # the others are count/4 of 57 cells, in eighths: 28.5, 14.25 and 42.75 cells.
    bars = {line[:10]: line[12:-3].rstrip() for line in lines}
    assert bars["2026-11-05"] == "█" * 57
    assert bars["2026-11-02"] == "█" * 28 + "▌"
    assert bars["2026-11-09"] == "█" * 14 + "▎"
    assert bars["2026-11-20"] == "█" * 42 + "▊"
    assert {day for day, bar in bars.items() if bar} == set(logins)
    assert max(len(line) for line in lines) == COLUMNS
    assert max(bars, key=lambda day: len(bars[day])) == "2026-11-05"


def test_usage_chart_follows_the_terminal_width(
    engine: Limiter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    _, out, _ = run(engine, capsys, "usage", APP)

    lines = chart_lines(out)
    assert all(len(line) == 40 for line in lines)
    peak = next(line for line in lines if line.startswith("2026-11-05"))
    assert peak == "2026-11-05  " + "█" * 25 + "  4"


def test_usage_json_is_the_month_metering(
    engine: Limiter, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(engine, capsys, "usage", APP, "--json")

    assert status == 0
    assert json.loads(out) == {
        "app_id": APP,
        "month": "2026-11",
        "dau": [
            {"day": "2026-11-02", "users": 2},
            {"day": "2026-11-05", "users": 4},
            {"day": "2026-11-09", "users": 1},
            {"day": "2026-11-20", "users": 3},
        ],
        "peak_dau": {"users": 4, "day": "2026-11-05"},
        "peak_groups": {"groups": 2, "day": "2026-11-09"},
        "bandwidth": [{"day": "2026-11-10", "mbps": 12.5}, {"day": "2026-11-12", "mbps": 3}],
    }


def test_usage_of_a_past_month_charts_every_day_and_a_future_one_none(
    engine: Limiter, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(engine, capsys, "usage", APP, "--month", "2026-10")
    lines = chart_lines(out)
    assert len(lines) == 31
    assert all(line.endswith("  0") and "█" not in line for line in lines)
    assert "peak DAU             0\n" in out

    _, out, _ = run(engine, capsys, "usage", APP, "--month", "2026-12")
    assert chart_lines(out) == []
    assert "DAU per day: 2026-12 has not begun" in out


def test_the_default_month_is_today_in_the_billing_timezone(
    engine: Limiter, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2026-11-30 17:00 UTC is already December 1 in Beijing.
    clock.set(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))
    _, out, _ = run(engine, capsys, "bill", APP, "--json")
    assert json.loads(out)["month"] == "2026-12"
    _, out, _ = run(engine, capsys, "usage", APP)
    assert "usage of 2026-12 in Asia/Shanghai, as of 2026-12-01" in out
    assert [line[:10] for line in chart_lines(out)] == ["2026-12-01"]


# -- bill -------------------------------------------------------------------------------------


def test_bill_lists_each_item_and_the_total(
    engine: Limiter, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(engine, capsys, "bill", APP, "--month", "2026-11")

    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "app 1400000001: bill of 2026-11, CNY"
    assert lines[2].split() == ["item", "quantity", "unit", "price", "amount", "detail"]
    rows = {line.split()[0]: line.split()[1:4] for line in lines[3:-1]}
    assert rows == {
        "package:pro": ["1", "999.00", "999.00"],
        "expansion:group_members_2000": ["1", "500.00", "500.00"],
        "history_extension": ["1", "500.00", "500.00"],
        "av_bandwidth": ["16", "2.00", "32.00"],
    }
    assert "1 period of pro bought: 2026-11-03 (1 month)" in out
    assert "16 Mbps-days over 2 days" in out
    assert lines[-1].split() == ["total", f"{NOVEMBER_TOTAL:,}.00", "CNY"]


def test_bill_json_is_the_bill_view(engine: Limiter, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(engine, capsys, "bill", APP, "--month", "2026-11", "--json")

    assert status == 0
    answer = json.loads(out)
    assert answer == BillView.of(engine.bill(APP, "2026-11")).model_dump(mode="json")
    assert (answer["currency"], answer["total"]) == ("CNY", NOVEMBER_TOTAL)
    assert [(i["item"], i["quantity"], i["amount"]) for i in answer["items"]] == [
        ("package:pro", 1, 999),
        ("expansion:group_members_2000", 1, 500),
        ("history_extension", 1, 500),
        ("av_bandwidth", 16, 32),
    ]


# -- reconcile --------------------------------------------------------------------------------

SOURCE: dict[str, Any] = {
    "accounts": ["alice", "bob", "dave"],
    "friendships": [
        {"user": "alice", "friend": "bob", "both_ways": True},
        {"user": "dave", "friend": "alice"},
    ],
    "groups": [
        {"id": "g1", "type": "Public", "owner": "alice", "members": ["bob", "dave"]},
        {"id": "room", "type": "AVChatRoom", "owner": "alice"},
    ],
}
SOURCE_LINES = [
    {"account": "alice"},
    {"account": "bob"},
    {"account": "dave"},
    {"friendship": {"user": "alice", "friend": "bob", "both_ways": True}},
    {"friendship": {"user": "dave", "friend": "alice"}},
    {"group": {"id": "g1", "type": "Public", "owner": "alice", "members": ["bob"]}},
    {"group": {"id": "g1", "type": "Public", "members": ["dave"]}},  # a group in two parts
    {"group": {"id": "room", "type": "AVChatRoom", "owner": "alice"}},
]
# Live before: accounts alice, bob, carol; alice <-> bob; g1 = alice (owner), bob; the AV room
# "room" = alice (not counted toward her groups_per_user). The source drops carol and adds
# dave, dave -> alice (one way), and dave in g1.
EXPECTED_REPORT = {
    "app_id": OTHER_APP,
    "accounts": {"before": 3, "after": 3, "added": 1, "removed": 1},
    "friendships": {"before": 2, "after": 3, "added": 1, "removed": 0},
    "groups": {"before": 2, "after": 2, "added": 0, "removed": 0},
    "memberships": {"before": 3, "after": 4, "added": 1, "removed": 0},
    "av_chatrooms": {"before": 1, "after": 1, "added": 0, "removed": 0},
    "groups_retyped": 0,
    "changes": [
        {"scope": "group", "id": "g1", "count": "group_members", "before": 2, "after": 3},
        {"scope": "user", "id": "dave", "count": "friends", "before": 0, "after": 1},
        {"scope": "user", "id": "dave", "count": "groups_per_user", "before": 0, "after": 1},
    ],
    "changes_total": 3,
    "truncated": False,
    "orphans": {"accounts": 0, "friendships": 0, "memberships": 0, "ids": []},
}


@pytest.fixture
def live(engine: Limiter, monkeypatch: pytest.MonkeyPatch) -> Limiter:
    """The other app's live counters before a reconcile; the OS user is ``ops``."""
    monkeypatch.setattr("getpass.getuser", lambda: "ops")
    engine.register_users(OTHER_APP, ["alice", "bob", "carol"])
    engine.add_friends(OTHER_APP, "alice", ["bob"])
    engine.create_group(OTHER_APP, "g1", "Public", owner="alice", members=["bob"])
    engine.create_group(OTHER_APP, "room", "AVChatRoom", owner="alice")
    return engine


def ndjson(lines: Iterable[object]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def test_reconcile_from_a_json_file_prints_the_drift_and_audits_the_os_user(
    live: Limiter, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "state.json"
    source.write_text(json.dumps(SOURCE))

    status, out, err = run(live, capsys, "reconcile", OTHER_APP, str(source))

    assert (status, err) == (0, "")
    assert "reconciled (audited as cli:ops)" in out
    rows = {
        line.split()[0]: line.split()[1:] for line in out.splitlines() if len(line.split()) == 5
    }
    assert rows["counted"] == ["before", "after", "added", "removed"]
    assert rows["accounts"] == ["3", "3", "1", "1"]
    assert rows["friendships"] == ["2", "3", "1", "0"]
    assert rows["groups"] == ["2", "2", "0", "0"]
    assert rows["memberships"] == ["3", "4", "1", "0"]
    assert rows["av_chatrooms"] == ["1", "1", "0", "0"]
    assert "groups retyped: 0" in out
    assert "count changes (3)" in out
    assert rows["group"] == ["g1", "group_members", "2", "3"]
    assert [line.split() for line in out.splitlines() if line.startswith("user ")] == [
        ["user", "dave", "friends", "0", "1"],
        ["user", "dave", "groups_per_user", "0", "1"],
    ]
    assert (live.usage(OTHER_APP).users, live.user_usage(OTHER_APP, "carol").registered) == (
        3,
        False,
    )

    status, out, _ = run(live, capsys, "audit", OTHER_APP, "--limit", "1", "--json")
    (entry,) = json.loads(out)["items"]
    assert (entry["actor"], entry["action"]) == ("cli:ops", "reconcile")
    assert entry["after"] == {
        "accounts": 3,
        "friendships": 3,
        "groups": 2,
        "memberships": 4,
        "av_chatrooms": 1,
    }


def test_reconcile_from_an_ndjson_file(
    live: Limiter, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "state.ndjson"
    source.write_text(ndjson(SOURCE_LINES))

    status, out, _ = run(live, capsys, "reconcile", OTHER_APP, str(source), "--json")

    assert status == 0
    assert json.loads(out) == EXPECTED_REPORT


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["-"], json.dumps(SOURCE)),
        (["-", "--format", "ndjson"], ndjson(SOURCE_LINES)),
    ],
)
def test_reconcile_reads_stdin(
    live: Limiter,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    text: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))

    status, out, _ = run(live, capsys, "reconcile", OTHER_APP, *argv, "--json")

    assert status == 0
    assert json.loads(out) == EXPECTED_REPORT


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a.ndjson", "ndjson"), ("A.JSONL", "ndjson"), ("a.json", "json"), ("-", "json")],
)
def test_the_source_format_follows_the_extension(path: str, expected: str) -> None:
    assert source_format_of(path) == expected


def test_format_overrides_the_extension(
    live: Limiter, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "export.txt"
    source.write_text(ndjson(SOURCE_LINES))

    status, out, _ = run(live, capsys, "reconcile", OTHER_APP, str(source), "--format", "ndjson")

    assert status == 0
    assert "count changes (3)" in out


class CountedLines:
    """A stdin whose lines are counted as they are taken; reading it whole fails the test."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.taken = 0
        self.buffer = self

    def __iter__(self) -> Iterator[bytes]:
        for line in self.lines:
            self.taken += 1
            yield line

    def read(self, *args: object) -> bytes:
        raise AssertionError("NDJSON must be streamed, not read whole")


def test_a_bad_ndjson_line_exits_2_naming_it_and_changes_nothing(
    live: Limiter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = [json.dumps({"account": f"user{n}"}).encode() + b"\n" for n in range(1000)]
    stdin = CountedLines([good[0], b"\n", b'{"account": 5}\n', *good[1:]])
    monkeypatch.setattr("sys.stdin", stdin)

    status, out, err = run(live, capsys, "reconcile", OTHER_APP, "-", "--format", "ndjson")

    assert (status, out) == (2, "")
    assert err == "limiter: line 3.account: Input should be a valid string\n"
    assert stdin.taken == 3  # nothing after the bad line was read
    assert live.usage(OTHER_APP).users == 3
    assert live.user_usage(OTHER_APP, "carol").registered


def test_a_missing_file_exits_2(
    live: Limiter, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.json"

    status, out, err = run(live, capsys, "reconcile", OTHER_APP, str(missing))

    assert (status, out) == (2, "")
    assert err == f"limiter: {missing}: No such file or directory\n"


def test_a_file_that_is_not_json_exits_2(
    live: Limiter, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "state.json"
    source.write_text('{"accounts": ["alice",')

    status, _, err = run(live, capsys, "reconcile", OTHER_APP, str(source))

    assert status == 2
    assert err.startswith(f"limiter: {source}: not valid JSON: ")
    assert err.count("\n") == 1


def test_a_bad_document_field_exits_2_naming_it(
    live: Limiter, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "state.json"
    source.write_text(json.dumps({"groups": [{"id": "g1", "type": "Public"}, {"id": "g2"}]}))

    status, _, err = run(live, capsys, "reconcile", OTHER_APP, str(source))

    assert (status, err) == (2, "limiter: body.groups.1.type: Field required\n")


def test_the_actor_falls_back_to_cli_without_an_os_user(
    live: Limiter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_user() -> str:
        raise OSError("no login name")

    monkeypatch.setattr("getpass.getuser", no_user)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(SOURCE).encode())))

    status, out, _ = run(live, capsys, "reconcile", OTHER_APP, "-")

    assert status == 0
    assert "audited as cli)" in out
    assert live.audit(OTHER_APP, 1)[0].actor == "cli"


def test_reconcile_on_the_in_process_store_of_an_app_without_av_rooms(
    engine: Limiter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"accounts": ["alice"]}')))

    # (fakeredis answers WRONGTYPE to SINTERCARD of two missing keys; the rebuild skips it.)
    assert run(engine, capsys, "reconcile", OTHER_APP, "-")[0] == 0
    assert engine.usage(OTHER_APP).users == 1


# -- over-limit and audit ---------------------------------------------------------------------


def test_over_limit_lists_what_a_lowered_limit_left_above_it(
    live: Limiter, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(live, capsys, "over-limit", OTHER_APP)
    assert out == "app 1400000002: nothing is over its limit\n"

    live.add_friends(OTHER_APP, "alice", ["carol"])
    live.set_override(OTHER_APP, "friends", 1, user="alice")

    status, out, _ = run(live, capsys, "over-limit", OTHER_APP)
    assert status == 0
    assert [line.split() for line in out.splitlines()] == [
        ["scope", "id", "limit", "current", "maximum"],
        ["user", "alice", "friends", "2", "1"],
    ]
    _, out, _ = run(live, capsys, "over-limit", OTHER_APP, "--json")
    assert json.loads(out) == {
        "items": [{"scope": "user", "id": "alice", "limit": "friends", "current": 2, "maximum": 1}]
    }


def test_audit_lists_the_plan_changes_newest_first(
    engine: Limiter, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(engine, capsys, "audit", APP)

    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["at", "actor", "action", "field", "before", "after"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["2026-11-10T12:00:00+08:00", "python", "add_expansion"],
        ["2026-11-05T12:00:00+08:00", "python", "add_expansion"],
        ["2026-11-03T12:00:00+08:00", "python", "set_edition"],
    ]
    assert '{"edition":"pro","periods":[["2026-11-03","2026-12-02"]]' in lines[3]

    _, out, _ = run(engine, capsys, "audit", APP, "--limit", "2", "--json")
    items = json.loads(out)["items"]
    assert [(item["action"], item["after"]["kind"]) for item in items] == [
        ("add_expansion", "group_members_2000"),
        ("add_expansion", "history_extension"),
    ]
    _, out, _ = run(engine, capsys, "audit", OTHER_APP)
    assert out == "app 1400000002: no plan changes recorded\n"


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["usage", APP, "--month", "2026-13"], "month: must be a month as YYYY-MM, not '2026-13'"),
        (["bill", APP, "--month", "Nov"], "month: must be a month as YYYY-MM, not 'Nov'"),
        (["audit", APP, "--limit", "0"], "limit: must be a whole number >= 1"),
        (["over-limit", "not an app"], None),
    ],
)
def test_bad_input_exits_2_with_one_line(
    engine: Limiter, capsys: pytest.CaptureFixture[str], argv: list[str], message: str | None
) -> None:
    status, out, err = run(engine, capsys, *argv)

    assert (status, out) == (2, "")
    assert err.startswith("limiter: ") and err.count("\n") == 1
    if message is not None:
        assert err == f"limiter: {message}\n"


def test_usage_errors_exit_2_from_argparse(
    engine: Limiter, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(engine, capsys, "bill")[0] == 2
    assert run(engine, capsys, "reconcile", APP, "x.json", "--format", "xml")[0] == 2
    status, _, err = run(engine, capsys)
    assert (status, err.splitlines()[-1]) == (
        2,
        "limiter: error: the following arguments are required: COMMAND",
    )
    status, out, _ = run(engine, capsys, "--help")
    assert status == 0
    listed = [line.split()[0] for line in out.splitlines() if line[:4] == "    " != line[4:8]]
    assert listed == ["usage", "bill", "reconcile", "over-limit", "audit", "migrate", "health"]


def test_an_unreachable_store_exits_1_without_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIMITER_REDIS_URL", "redis://127.0.0.1:1/0")

    status = main(["over-limit", APP])

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert err.startswith("limiter: Redis unavailable: ") and err.count("\n") == 1


def test_bad_settings_exit_1_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIMITER_TIMEZONE", "Mars/Olympus_Mons")

    status = main(["bill", APP])

    _, err = capsys.readouterr()
    assert status == 1
    assert err.startswith("limiter: settings: LIMITER_TIMEZONE: ") and err.count("\n") == 1


# -- the installed module, end to end ---------------------------------------------------------


@pytest.mark.redis
def test_the_module_runs_against_the_real_server(clock: ManualClock) -> None:
    client = real_redis_or_skip()
    engine = Limiter.from_settings(Settings(redis_url=REDIS_URL, cache_seconds=0), clock=clock)
    try:
        set_up_november(engine, clock)
        env = {name: value for name, value in os.environ.items() if not name.startswith("LIMITER_")}
        env |= {"LIMITER_REDIS_URL": REDIS_URL, "COLUMNS": "100"}
        g2 = {"id": "g2", "type": "Private", "owner": "bob"}  # the one group left live

        def limiter(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "limiter.cli", *argv]
            return subprocess.run(
                command, env=env, input=stdin, capture_output=True, text=True, timeout=60
            )

        bill = limiter("bill", APP, "--month", "2026-11")
        assert (bill.returncode, bill.stderr) == (0, "")
        assert bill.stdout.splitlines()[-1].split() == ["total", f"{NOVEMBER_TOTAL:,}.00", "CNY"]

        usage = limiter("usage", APP, "--month", "2026-11", "--json")
        assert usage.returncode == 0
        assert json.loads(usage.stdout)["dau"] == [
            {"day": "2026-11-02", "users": 2},
            {"day": "2026-11-05", "users": 4},
            {"day": "2026-11-09", "users": 1},
            {"day": "2026-11-20", "users": 3},
        ]

        # No AV room on either side: the real server counts the empty intersection.
        source = ndjson([{"account": "alice"}, {"account": "bob"}, {"group": g2}])
        reconcile = limiter("reconcile", APP, "-", "--format", "ndjson", "--json", stdin=source)
        assert reconcile.returncode == 0, reconcile.stderr
        report = json.loads(reconcile.stdout)
        # November registered alice, bob, carol and dave; the source keeps alice and bob.
        assert report["accounts"] == {"before": 4, "after": 2, "added": 0, "removed": 2}
        assert report["memberships"] == {"before": 1, "after": 1, "added": 0, "removed": 0}
        assert report["av_chatrooms"] == {"before": 0, "after": 0, "added": 0, "removed": 0}
        assert engine.audit(APP, 1)[0].actor.startswith("cli")

        bad = limiter("usage", APP, "--month", "2026-13")
        assert (bad.returncode, bad.stdout) == (2, "")
        assert bad.stderr == "limiter: month: must be a month as YYYY-MM, not '2026-13'\n"
    finally:
        engine.close()
        client.flushdb()
        client.close()
