"""Rebuild the limiter's counters from the example's SQLite database, the source of truth:

    python -m examples.im_backend.reconcile [APP ...] [--db PATH] [--json]

With no APP, every app that has an account or a group in the database. Settings come from
``LIMITER_*`` (``LIMITER_REDIS_URL``) and the database from ``IM_DB_PATH`` unless ``--db``.
Run it after Redis lost data (a flush, a failover without persistence) or whenever counters
may have drifted; run it while the backend is quiet, as changes made during it are replaced.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence

from examples.im_backend.app import DEFAULT_DB_PATH
from examples.im_backend.db import Database
from limiter import Limiter
from limiter.cli import EXIT_BAD_INPUT, EXIT_FAILED, cli_actor, print_report
from limiter.errors import InvalidRequest, LimiterError
from limiter.reconcile import AccountRecord, FriendRecord, GroupRecord, Record
from limiter.schemas import ReconcileView


def records(db: Database, app: str) -> Iterator[Record]:
    """The app's accounts, friend-list entries and groups (owner and members) as reconcile
    records, read lazily."""
    for user in db.accounts(app):
        yield AccountRecord(user)
    for user, friend in db.friendships(app):
        yield FriendRecord(user, friend)
    for group, members in db.groups_with_members(app):
        # An owner whose account was deleted left the group: it is no longer a member.
        owner = group.owner if group.owner in members else None
        yield GroupRecord(group.id, group.type, tuple(members), owner)


def main(argv: Sequence[str] | None = None, *, limiter: Limiter | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.im_backend.reconcile",
        description="Rebuild limiter's counters from the example backend's SQLite database.",
    )
    parser.add_argument("apps", nargs="*", metavar="APP", help="apps to rebuild (default: all)")
    parser.add_argument("--db", help=f"the database (default: $IM_DB_PATH or {DEFAULT_DB_PATH})")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON lines")
    args = parser.parse_args(argv)
    path = args.db or os.environ.get("IM_DB_PATH") or DEFAULT_DB_PATH
    if not os.path.isfile(path):
        print(f"reconcile: no database at {path}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        db = Database(path, read_only=True)
        apps = args.apps or db.apps()
    except sqlite3.Error as exc:
        print(f"reconcile: {path} is not the example's database: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not apps:
        print(f"reconcile: {path} holds no app: nothing to rebuild")
        db.close()
        return 0
    try:
        engine = limiter if limiter is not None else Limiter.from_settings()
    except LimiterError as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        db.close()
        return EXIT_FAILED
    try:
        actor = cli_actor()
        for app in apps:
            with db.snapshot():  # one consistent state of the app's data
                report = engine.reconcile(app, records(db, app), actor=actor)
            if args.json:
                print(ReconcileView.of(report).model_dump_json())
            else:
                print_report(report, actor)
    except (InvalidRequest, sqlite3.Error) as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LimiterError as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        db.close()
        if limiter is None:
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
