"""The example's own data in SQLite (standard library only): accounts, friendships, groups,
members and one-to-one messages, per app. It knows nothing about limits.

One connection serves the process (the app runs on one event loop); every change is one
transaction, so a failed write leaves nothing behind. The app holds :meth:`Database.serialized`
for an app around each check-then-write (existence checks, the limiter's decision, the write),
so two requests of one app never interleave between the limiter and SQLite; run one worker per
database file (SQLite has one writer anyway).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    app TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (app, user_id));
CREATE TABLE IF NOT EXISTS friends (
    app TEXT NOT NULL, user_id TEXT NOT NULL, friend_id TEXT NOT NULL,
    PRIMARY KEY (app, user_id, friend_id));
CREATE TABLE IF NOT EXISTS groups (
    app TEXT NOT NULL, group_id TEXT NOT NULL, type TEXT NOT NULL, owner TEXT NOT NULL,
    name TEXT NOT NULL, PRIMARY KEY (app, group_id));
CREATE TABLE IF NOT EXISTS members (
    app TEXT NOT NULL, group_id TEXT NOT NULL, user_id TEXT NOT NULL,
    PRIMARY KEY (app, group_id, user_id));
CREATE INDEX IF NOT EXISTS members_by_user ON members (app, user_id);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT NOT NULL, from_account TEXT NOT NULL,
    to_account TEXT NOT NULL, random INTEGER NOT NULL, sent_at INTEGER NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_pair ON messages (app, from_account, to_account, sent_at);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (app, sent_at);
"""


@dataclass(frozen=True)
class Group:
    id: str
    type: str
    owner: str
    name: str
    members: int


@dataclass(frozen=True)
class Message:
    seq: int
    from_account: str
    to_account: str
    random: int
    sent_at: int
    body: str


class Database:
    """The example's tables; ``path`` is a file (``IM_DB_PATH``) or ``:memory:``.
    ``read_only`` opens an existing file without creating or changing anything."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = str(path)
        if read_only:
            uri = f"{Path(path).resolve().as_uri()}?mode=ro"
            self._connection = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            self._connection = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None
            )
        self._lock = threading.Lock()
        self._apps: dict[str, tuple[asyncio.Lock, int]] = {}  # app -> (lock, holders + waiters)
        if not read_only:
            if self.path != ":memory:":
                # WAL: readers never wait for the writer. NORMAL: no fsync per commit (a power
                # cut may lose the last commits, which the reconcile repairs in the counters).
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.executescript(SCHEMA)

    def close(self) -> None:
        self._connection.close()

    @asynccontextmanager
    async def serialized(self, app: str) -> AsyncIterator[None]:
        """Exclusive use of one app's data in this process, across awaits."""
        lock, users = self._apps.get(app, (asyncio.Lock(), 0))
        self._apps[app] = lock, users + 1
        try:
            async with lock:
                yield
        finally:
            lock, users = self._apps[app]
            if users == 1:
                del self._apps[app]  # kept only while in use: ids cannot grow the map
            else:
                self._apps[app] = lock, users - 1

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every read inside sees the same committed state."""
        self._connection.execute("BEGIN")
        try:
            yield
        finally:
            self._connection.execute("COMMIT")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection.execute(sql, params).fetchall()

    # -- reads ------------------------------------------------------------------------------------

    def apps(self) -> list[str]:
        """Every app with an account or a group."""
        rows = self._rows("SELECT app FROM accounts UNION SELECT app FROM groups ORDER BY 1")
        return [row[0] for row in rows]

    def existing_accounts(self, app: str, users: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(users))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT user_id FROM accounts WHERE app = ? AND user_id IN ({marks})"
            found.update(row[0] for row in self._rows(sql, [app, *chunk]))
        return found

    def group(self, app: str, group: str) -> Group | None:
        rows = self._rows(
            "SELECT g.group_id, g.type, g.owner, g.name, "
            "(SELECT COUNT(*) FROM members m WHERE m.app = g.app AND m.group_id = g.group_id) "
            "FROM groups g WHERE g.app = ? AND g.group_id = ?",
            (app, group),
        )
        return Group(*rows[0]) if rows else None

    def accounts(self, app: str) -> Iterator[str]:
        for (user,) in self._rows("SELECT user_id FROM accounts WHERE app = ?", (app,)):
            yield user

    def friendships(self, app: str) -> Iterator[tuple[str, str]]:
        """Every friend-list entry: (user, friend) means friend is in user's list."""
        yield from self._rows("SELECT user_id, friend_id FROM friends WHERE app = ?", (app,))

    def groups_with_members(self, app: str) -> Iterator[tuple[Group, list[str]]]:
        groups = self._rows(
            "SELECT group_id, type, owner, name FROM groups WHERE app = ? ORDER BY group_id", (app,)
        )
        for group_id, type_, owner, name in groups:
            members = [
                row[0]
                for row in self._rows(
                    "SELECT user_id FROM members WHERE app = ? AND group_id = ?", (app, group_id)
                )
            ]
            yield Group(group_id, type_, owner, name, len(members)), members

    def messages(
        self,
        app: str,
        a: str,
        b: str,
        since: int,
        until: int,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[Message]:
        """Messages between a and b sent in [since, until], newest first, at most ``limit``;
        with ``after`` (a page's last (sent_at, seq)), only those that come after it."""
        last_time, last_seq = after if after is not None else (until, 2**63 - 1)
        rows = self._rows(
            "SELECT seq, from_account, to_account, random, sent_at, body FROM messages "
            "WHERE app = ? AND ((from_account = ? AND to_account = ?) OR "
            "(from_account = ? AND to_account = ?)) AND sent_at BETWEEN ? AND ? "
            "AND (sent_at < ? OR (sent_at = ? AND seq < ?)) "
            "ORDER BY sent_at DESC, seq DESC LIMIT ?",
            (app, a, b, b, a, since, until, last_time, last_time, last_seq, limit),
        )
        return [Message(*row) for row in rows]

    # -- writes -----------------------------------------------------------------------------------

    def add_accounts(self, app: str, users: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO accounts VALUES (?, ?)", [(app, user) for user in users]
            )

    def delete_accounts(self, app: str, users: Iterable[str]) -> None:
        """Delete accounts with their friend-list entries (both directions) and memberships."""
        with self._transaction() as db:
            for user in users:
                db.execute("DELETE FROM accounts WHERE app = ? AND user_id = ?", (app, user))
                db.execute(
                    "DELETE FROM friends WHERE app = ? AND (user_id = ? OR friend_id = ?)",
                    (app, user, user),
                )
                db.execute("DELETE FROM members WHERE app = ? AND user_id = ?", (app, user))

    def add_friend_entries(self, app: str, entries: Iterable[tuple[str, str]]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO friends VALUES (?, ?, ?)",
                [(app, user, friend) for user, friend in entries],
            )

    def delete_friend_entries(self, app: str, entries: Iterable[tuple[str, str]]) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM friends WHERE app = ? AND user_id = ? AND friend_id = ?",
                [(app, user, friend) for user, friend in entries],
            )

    def create_group(
        self, app: str, group: str, type_: str, owner: str, name: str, members: Iterable[str]
    ) -> None:
        """The group and its members, the owner among them."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO groups VALUES (?, ?, ?, ?, ?)", (app, group, type_, owner, name)
            )
            db.executemany(
                "INSERT OR IGNORE INTO members VALUES (?, ?, ?)",
                [(app, group, user) for user in dict.fromkeys([owner, *members])],
            )

    def destroy_group(self, app: str, group: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM members WHERE app = ? AND group_id = ?", (app, group))
            db.execute("DELETE FROM groups WHERE app = ? AND group_id = ?", (app, group))

    def add_members(self, app: str, group: str, users: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO members VALUES (?, ?, ?)",
                [(app, group, user) for user in users],
            )

    def delete_members(self, app: str, group: str, users: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM members WHERE app = ? AND group_id = ? AND user_id = ?",
                [(app, group, user) for user in users],
            )

    def purge_messages(self, app: str, before: int) -> None:
        """Delete the app's messages sent before ``before`` (Unix seconds)."""
        with self._transaction() as db:
            db.execute("DELETE FROM messages WHERE app = ? AND sent_at < ?", (app, before))

    def add_message(
        self, app: str, from_account: str, to_account: str, random: int, sent_at: int, body: str
    ) -> int:
        """Store a message; its sequence number."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO messages (app, from_account, to_account, random, sent_at, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (app, from_account, to_account, random, sent_at, body),
            )
            seq = cursor.lastrowid
        assert seq is not None
        return seq
