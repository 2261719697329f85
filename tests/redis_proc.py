"""A ``redis-server`` the test owns: its own port and directory, stopped by pid (SIGTERM, or
SIGKILL for a crash) and restarted on the same port with the same directory, so a test can
take the store away mid-run and bring it back, with or without its append-only file.

Without a ``redis-server`` binary the test is skipped locally and fails when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from bench.servers import free_port

START_SECONDS = 10.0
STOP_SECONDS = 10.0
POLL_SECONDS = 0.02


def redis_server_or_skip() -> str:
    """The ``redis-server`` binary; skip (locally) or fail (CI) without one."""
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(found, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("CI needs redis-server on PATH for the fault tests")
        pytest.skip("no redis-server binary")
    return found


@dataclass
class RedisProcess:
    """One ``redis-server`` on ``port`` keeping its files in ``directory``. ``persistent``:
    an append-only file fsynced every second (as the compose file runs it); otherwise nothing
    is written to disk, so a restart comes back empty."""

    binary: str
    directory: Path
    persistent: bool
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    stops: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log(self) -> str:
        return (self.directory / "redis.log").read_text(errors="replace")

    def start(self) -> None:
        """Start the server (again, on the same port and directory) and wait until it answers
        with its data loaded."""
        assert self.process is None, "already running"
        appendonly = ["--appendonly", "yes", "--appendfsync", "everysec"]
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", "redis.log",
            "--save", "",
            *(appendonly if self.persistent else ["--appendonly", "no"]),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.starts += 1
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop(signal.SIGKILL)
            raise

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        with redis.Redis(port=self.port, socket_timeout=1) as client:
            while True:
                assert self.process is not None and self.process.poll() is None, self.log()
                try:
                    client.ping()  # LOADING while it replays its file: a ConnectionError
                    return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, f"no answer in {START_SECONDS} s"
                    time.sleep(POLL_SECONDS)

    def stop(self, how: int = signal.SIGTERM) -> None:
        """Signal the server by pid and wait for it to exit (SIGKILL: a crash)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"redis-server ignored {how!r}:\n{self.log()}") from None
        self.stops += 1

    def restart(self, how: int = signal.SIGTERM) -> None:
        self.stop(how)
        self.start()


@contextmanager
def redis_process(directory: Path, *, persistent: bool = False) -> Iterator[RedisProcess]:
    """A started test-owned server, always stopped (killed if need be) at the end."""
    server = RedisProcess(redis_server_or_skip(), directory, persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop(signal.SIGKILL)
