"""The ``limiter`` console command: an operator's view of one app (the month's metering, its
bill, what is over its limits, the audit log), a reconcile from the IM's own data, and the
store's health.

Each subcommand is one :class:`Command` in :data:`COMMANDS`; the engine comes from
``Limiter.from_settings()`` (``LIMITER_*`` variables) unless the caller of :func:`main` passes one.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

from limiter.billing import Bill, plain_number
from limiter.console.text import compact, dau_chart, money, on_day, print_json, print_table
from limiter.engine import Limiter
from limiter.errors import InvalidRequest, LimiterError
from limiter.metering import Month
from limiter.reconcile import ReconcileReport, Record, parse_document, parse_lines
from limiter.schemas import (
    AuditLog,
    BillView,
    HealthView,
    MigrationsView,
    MigrationView,
    MonthlyUsageView,
    OverLimitReport,
    ReconcileView,
)

EXIT_FAILED = 1  # the store is unavailable, or anything else went wrong
EXIT_BAD_INPUT = 2  # bad arguments or a bad input file (argparse uses 2 as well)


class Context:
    """What a command runs with: its parsed arguments, and the engine, built on first use (so
    a command stopped by a bad argument or a missing file never builds one)."""

    def __init__(self, args: argparse.Namespace, limiter: Limiter | None) -> None:
        self.args = args
        self._limiter = limiter
        self._built: Limiter | None = None

    @property
    def limiter(self) -> Limiter:
        if self._limiter is None:
            self._limiter = self._built = Limiter.from_settings()
        return self._limiter

    def close(self) -> None:
        """Close the engine if this context built it; an injected one is its caller's."""
        if self._built is not None:
            self._built.close()


@dataclass(frozen=True)
class Command:
    """One subcommand: its name and one-line help, what it adds to its parser, what it runs
    (returning the exit status)."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Context], int]


# -- usage ------------------------------------------------------------------------------------


def _usage_arguments(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    _month_argument(parser)
    _json_argument(parser)


def run_usage(context: Context) -> int:
    args, limiter = context.args, context.limiter
    today = limiter.today()
    month = _month(args.month, today)
    usage = limiter.monthly_usage(args.app, month)
    if args.json:
        print_json(MonthlyUsageView.of(usage))
        return 0
    days = [day for day in month.days() if day <= today]
    bandwidth_peak = max(usage.bandwidth.items(), key=lambda item: item[1], default=None)
    summary = [
        ("peak DAU", f"{usage.peak_dau:,}", on_day(usage.peak_dau_day)),
        ("peak groups", f"{usage.peak_groups:,}", on_day(usage.peak_groups_day)),
        ("days with logins", f"{len(usage.dau)}", ""),
        (
            "bandwidth peak days",
            f"{len(usage.bandwidth)}",
            ""
            if bandwidth_peak is None
            else f"highest {plain_number(bandwidth_peak[1])} Mbps on {bandwidth_peak[0]}",
        ),
    ]
    print(f"app {usage.app}: usage of {month} in {limiter.settings.timezone}, as of {today}")
    print()
    print_table(None, summary, numeric={1})
    print()
    if not days:
        print(f"DAU per day: {month} has not begun")
        return 0
    print("DAU per day")
    for line in dau_chart(usage.dau, days, shutil.get_terminal_size().columns):
        print(line)
    return 0


# -- bill -------------------------------------------------------------------------------------


def _bill_arguments(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    _month_argument(parser)
    _json_argument(parser)


def run_bill(context: Context) -> int:
    args, limiter = context.args, context.limiter
    bill = limiter.bill(args.app, _month(args.month, limiter.today()))
    if args.json:
        print_json(BillView.of(bill))
    else:
        _print_bill(bill)
    return 0


def _print_bill(bill: Bill) -> None:
    print(f"app {bill.app}: bill of {bill.month}, {bill.currency}")
    print()
    rows = [
        (
            item.item,
            plain_number(item.quantity),
            money(item.unit_price),
            money(item.amount),
            item.detail,
        )
        for item in bill.items
    ]
    rows.append(("total", "", "", money(bill.total), bill.currency))
    print_table(("item", "quantity", "unit price", "amount", "detail"), rows, numeric={1, 2, 3})


# -- reconcile --------------------------------------------------------------------------------


def _reconcile_arguments(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    parser.add_argument(
        "file",
        metavar="FILE",
        help="the IM's state: a JSON document, or NDJSON (one record a line); - reads stdin",
    )
    parser.add_argument(
        "--format",
        choices=("json", "ndjson"),
        help="default: ndjson for .ndjson and .jsonl files, else json",
    )
    _json_argument(parser)


def run_reconcile(context: Context) -> int:
    args = context.args
    source_format = args.format or source_format_of(args.file)
    with _open_source(args.file) as stream:
        records = (
            parse_lines(stream)  # streamed: a line is read when the engine asks for it
            if source_format == "ndjson"
            else _document(stream, "stdin" if args.file == "-" else args.file)
        )
        actor = cli_actor()
        report = context.limiter.reconcile(args.app, records, actor=actor)
    if args.json:
        print_json(ReconcileView.of(report))
    else:
        print_report(report, actor)
    return 0


def source_format_of(path: str) -> str:
    return "ndjson" if path.lower().endswith((".ndjson", ".jsonl")) else "json"


def cli_actor() -> str:
    """Who the audit log names: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in the environment and no passwd entry
        return "cli"


@contextlib.contextmanager
def _open_source(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        stream = open(path, "rb")  # noqa: SIM115  (the with below closes it)
    except OSError as exc:
        raise InvalidRequest(path, exc.strerror or str(exc)) from None
    with stream:
        yield stream


def _document(stream: BinaryIO, name: str) -> Iterator[Record]:
    try:
        data = json.load(stream)
    except ValueError as exc:  # bad JSON, or not UTF-8
        raise InvalidRequest(name, f"not valid JSON: {exc}") from None
    return parse_document(data)


def print_report(report: ReconcileReport, actor: str) -> None:
    print(f"app {report.app}: reconciled (audited as {actor})")
    print()
    drifts = (
        ("accounts", report.accounts),
        ("friendships", report.friendships),
        ("groups", report.groups),
        ("memberships", report.memberships),
        ("av_chatrooms", report.av_chatrooms),
    )
    rows = [(name, str(d.before), str(d.after), str(d.added), str(d.removed)) for name, d in drifts]
    print_table(("counted", "before", "after", "added", "removed"), rows, numeric={1, 2, 3, 4})
    print(f"groups retyped: {report.groups_retyped}")
    orphans = report.orphans
    if orphans.accounts:
        named = ", ".join(orphans.ids[:10]) + (", ..." if orphans.accounts > 10 else "")
        print(
            f"orphans dropped: {orphans.friendships} friend-list entries and "
            f"{orphans.memberships} memberships of {orphans.accounts} ids that are not "
            f"accounts ({named})"
        )
    print()
    if not report.changes:
        print("no user's or group's count changed")
        return
    shown = f"first {len(report.changes)} of " if report.truncated else ""
    print(f"count changes ({shown}{report.changes_total})")
    changes = [(c.scope, c.id, c.count, str(c.before), str(c.after)) for c in report.changes]
    print_table(("scope", "id", "count", "before", "after"), changes, numeric={3, 4})


# -- over-limit and audit ---------------------------------------------------------------------


def _over_limit_arguments(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    _json_argument(parser)


def run_over_limit(context: Context) -> int:
    args = context.args
    found = context.limiter.over_limit(args.app)
    if args.json:
        print_json(OverLimitReport.of(found))
    elif not found:
        print(f"app {args.app}: nothing is over its limit")
    else:
        rows = [(o.scope, o.id, o.limit, str(o.current), str(o.maximum)) for o in found]
        print_table(("scope", "id", "limit", "current", "maximum"), rows, numeric={3, 4})
    return 0


def _audit_arguments(parser: argparse.ArgumentParser) -> None:
    _app_argument(parser)
    parser.add_argument(
        "--limit", type=int, default=50, metavar="N", help="newest N entries (default 50)"
    )
    _json_argument(parser)


def run_audit(context: Context) -> int:
    args = context.args
    entries = context.limiter.audit(args.app, args.limit)
    if args.json:
        print_json(AuditLog.of(entries))
    elif not entries:
        print(f"app {args.app}: no plan changes recorded")
    else:
        rows = [
            (e.at.isoformat(), e.actor, e.action, e.field, compact(e.before), compact(e.after))
            for e in entries
        ]
        print_table(("at", "actor", "action", "field", "before", "after"), rows)
    return 0


# -- health -----------------------------------------------------------------------------------


def _health_arguments(parser: argparse.ArgumentParser) -> None:
    _json_argument(parser)


def run_health(context: Context) -> int:
    """The store answers, and its data set's marker says since when it holds data: one
    process cannot tell a flushed data set from a new one, but an operator who sees a recent
    ``since`` on an old deployment can (then reconcile every app and set plans again)."""
    status = context.limiter.check_data()
    if context.args.json:
        print_json(HealthView.of("reachable", status))
    else:
        since = "unknown" if status.since is None else status.since.isoformat()
        print(f"store: reachable\ndata set: marker {status.marker}, holding data since {since}")
    return 0


# -- migrate ----------------------------------------------------------------------------------


def _migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("apps", metavar="APP", nargs="*", help="the apps' SDKAppIDs")
    parser.add_argument(
        "--all", action="store_true", help="every app found in the old layout (walks all keys)"
    )
    _json_argument(parser)


def run_migrate(context: Context) -> int:
    """Convert apps from limiter 0.1's relation layout, one at a time, each chunk by chunk:
    safe to stop and to run again (what was moved is not moved twice)."""
    args = context.args
    if bool(args.apps) == args.all:
        raise InvalidRequest("apps", "name the apps to migrate, or give --all (not both)")
    apps = context.limiter.apps_in_old_layout() if args.all else args.apps
    done = []
    for app in apps:
        migrated = context.limiter.migrate(app)
        done.append(MigrationView.of(migrated))
        if not args.json:
            moved = ", ".join(f"{name} {count}" for name, count in migrated.moved.items())
            print(f"app {app}: moved {migrated.total} relation entries ({moved})")
    if args.json:
        print_json(MigrationsView(items=done))
    elif not apps:
        print("no app holds relations in the old layout")
    return 0


# -- the command line -------------------------------------------------------------------------

COMMANDS: tuple[Command, ...] = (
    Command("usage", "the month's metering: peaks and DAU per day", _usage_arguments, run_usage),
    Command("bill", "the month's bill, item by item", _bill_arguments, run_bill),
    Command(
        "reconcile",
        "rebuild the counters from the IM's own data and report the drift",
        _reconcile_arguments,
        run_reconcile,
    ),
    Command(
        "over-limit",
        "what holds more than its limit now allows",
        _over_limit_arguments,
        run_over_limit,
    ),
    Command("audit", "the latest plan changes, newest first", _audit_arguments, run_audit),
    Command(
        "migrate",
        "convert apps from limiter 0.1's relation layout (resumable, safe to run twice)",
        _migrate_arguments,
        run_migrate,
    ),
    Command(
        "health",
        "whether the store answers, and since when its data set exists (a flush resets it)",
        _health_arguments,
        run_health,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="limiter",
        description="Plan limits of a hosted IM service: inspect and reconcile one app. "
        "The store comes from LIMITER_* variables (LIMITER_REDIS_URL, ...).",
    )
    subcommands = parser.add_subparsers(metavar="COMMAND", required=True)
    for command in COMMANDS:
        subparser = subcommands.add_parser(
            command.name, help=command.help, description=command.help
        )
        command.arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None, *, limiter: Limiter | None = None) -> int:
    """Run one command; returns the exit status. ``limiter``: an engine to use instead of
    one built from the settings (tests pass one on an in-process store)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help, or a usage error argparse has already printed
        return int(exit.code or 0)
    context = Context(args, limiter)
    try:
        status: int = args.run(context)
        return status
    except InvalidRequest as exc:
        return _fail(exc, EXIT_BAD_INPUT)
    except LimiterError as exc:  # the store is unavailable, a bad configuration, ...
        return _fail(exc, EXIT_FAILED)
    finally:
        context.close()


def _fail(exc: LimiterError, status: int) -> int:
    print(f"limiter: {exc}", file=sys.stderr)
    return status


# -- helpers ----------------------------------------------------------------------------------


def _app_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", metavar="APP", help="the app's SDKAppID")


def _month_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--month", metavar="YYYY-MM", help="default: this month in the billing timezone"
    )


def _json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _month(given: str | None, today: date) -> Month:
    """``--month``, or the month of today."""
    return Month.parse(today if given is None else given)


if __name__ == "__main__":
    raise SystemExit(main())
