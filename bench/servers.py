"""Server processes for the benchmarks and the end-to-end tests: start a command that serves
HTTP, wait until it answers, stop it and collect its exit status and output (one log file,
stdout and stderr)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 30.0
STOP_SECONDS = 15.0
POLL_SECONDS = 0.05


@dataclass
class Server:
    """A server process; everything it prints goes to ``log_path``."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    returncode: int | None = field(default=None)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], bool], what: str, seconds: float) -> None:
        """Poll ``condition`` until it holds; fail if the process exits or time runs out."""
        deadline = time.monotonic() + seconds
        while not condition():
            assert self.process.poll() is None, f"the server exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"{what} within {seconds} s:\n{self.output()}"
            time.sleep(POLL_SECONDS)

    def stop(self, how: int = signal.SIGTERM, seconds: float = STOP_SECONDS) -> int:
        """Send ``how`` and wait for the exit; kill (and fail) if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the server ignored {how!r}:\n{self.output()}") from None
        self.returncode = self.process.returncode
        return self.returncode


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(base_url: str, path: str) -> bool:
    """Whether ``GET base_url + path`` gets any HTTP answer (a connection error: not yet)."""
    try:
        with httpx.Client(base_url=base_url, timeout=2) as client:
            client.get(path)
    except httpx.TransportError:
        return False
    return True


def start(
    command: Sequence[str],
    *,
    base_url: str,
    log_path: Path,
    env: Mapping[str, str],
    ready_path: str | None = "/openapi.json",
    seconds: float = START_SECONDS,
) -> Server:
    """Start ``command`` in the repository root; with ``ready_path``, wait until the server
    answers it (the caller waits for anything else)."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(command), cwd=ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(process, base_url, log_path)
    if ready_path is not None:
        try:
            server.wait_until(
                lambda: answers(base_url, ready_path), f"no answer on {ready_path}", seconds
            )
        except BaseException:
            server.stop(signal.SIGKILL)
            raise
    return server


def environment(**values: str) -> dict[str, str]:
    """This process's environment without any ``LIMITER_*`` or ``IM_*`` variable (a
    developer's shell must not change what a test means), plus ``values``."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LIMITER_", "IM_"))
    }
    return {**kept, **values}
