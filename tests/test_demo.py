"""The demo: the example IM backend on localhost with an in-process store, a generated admin
token and a temporary SQLite database, run as ``python -m examples.im_backend.demo``."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.servers import ROOT, Server, environment, free_port, start

APP = "1400000001"
TIMEOUT = 10.0
COMMAND = [sys.executable, "-m", "examples.im_backend.demo"]


@contextmanager
def demo(tmp_path: Path, *arguments: str, host: str = "127.0.0.1") -> Iterator[Server]:
    """The demo without LIMITER_* or IM_* in its environment, answering on ``host``; killed if
    the test did not stop it, its temporary directory removed if it left one."""
    port = free_port()
    server = start(
        [*COMMAND, *arguments, "--port", str(port)],
        base_url=f"http://{host}:{port}",
        log_path=tmp_path / "demo.log",
        env=environment(),
    )
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop(signal.SIGKILL)
        found = re.search(r"database:\s+(\S+)", server.output())
        if found and Path(found[1]).parent.name.startswith("limiter-demo-"):
            shutil.rmtree(Path(found[1]).parent, ignore_errors=True)


def printed(server: Server, label: str) -> str:
    """The value the demo printed after ``label:`` on its banner."""
    found = re.search(rf"^  {re.escape(label)}:\s+(.+)$", server.output(), re.MULTILINE)
    assert found, server.output()
    return found[1].strip()


def im(http: httpx.Client, command: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = http.post(f"/v4/{command}", params={"sdkappid": APP}, json=body)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def assert_stopped_cleanly(server: Server, status: int, database: Path) -> None:
    output = server.output()
    assert status == 0, output
    assert "Application shutdown complete." in output and "Traceback" not in output, output
    assert not database.exists() and not database.parent.exists(), output


def test_demo_serves_the_example_with_an_in_process_store_and_a_generated_token(
    tmp_path: Path,
):
    with demo(tmp_path) as server:
        banner = server.output()
        assert f"limiter demo: the example IM backend on {server.base_url}" in banner
        assert printed(server, "store").startswith("in-process (LIMITER_REDIS_URL unset)")
        token = printed(server, "admin token")
        assert len(token) >= 16 and token != "None"
        database = Path(printed(server, "database"))
        assert database.parent.name.startswith("limiter-demo-") and database.exists()

        with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as http:
            admin = http.get(f"/admin/apps/{APP}", headers={"Authorization": f"Bearer {token}"})
            assert admin.status_code == 200, admin.text
            assert admin.json()["edition"] == "trial"
            wrong = http.get(f"/admin/apps/{APP}", headers={"Authorization": "Bearer " + "x" * 24})
            assert wrong.status_code == 401
            assert wrong.headers["www-authenticate"].startswith("Bearer")

            # The banner's curl command works as printed (curl -d sends a form content type).
            curl = shlex.split(printed(server, "try"))
            assert curl[:2] == ["curl", "-s"] and "-d" in curl
            url, body = curl[2], curl[curl.index("-d") + 1]
            answer = http.post(
                url,
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}

            # The in-process store enforces the trial: the 21st member of a group is refused.
            members = [f"m{n:02d}" for n in range(1, 21)]
            answer = im(http, "im_open_login_svc/multiaccount_import", {"Accounts": members})
            assert answer["FailAccounts"] == []
            group = {
                "Owner_Account": "alice",
                "Type": "Public",
                "GroupId": "demo-group",
                "Name": "demo",
                "MemberList": [{"Member_Account": user} for user in members[:19]],
            }
            assert im(http, "group_open_http_svc/create_group", group)["GroupId"] == "demo-group"
            add = {"GroupId": "demo-group", "MemberList": [{"Member_Account": "m20"}]}
            assert im(http, "group_open_http_svc/add_group_member", add) == {
                "ActionStatus": "FAIL",
                "ErrorCode": 10014,
                "ErrorInfo": "group_members limit 20 refuses the addition for group "
                "'demo-group' (current 20; IM code 10014)",
            }

        status = server.stop(signal.SIGINT)
        assert_stopped_cleanly(server, status, database)
        assert token not in server.output().replace(f"admin token: {token}", "")


def second_loopback() -> str:
    """127.0.0.2 where it can be bound (Linux routes all of 127/8 to loopback)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.2", 0))
        except OSError:
            pytest.skip("127.0.0.2 cannot be bound here")
    return "127.0.0.2"


def test_demo_listens_on_the_given_host_and_port(tmp_path: Path):
    host = second_loopback()
    with demo(tmp_path, "--host", host, host=host) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        assert f"on http://{host}:{port}" in server.output()
        with httpx.Client(timeout=TIMEOUT) as http:
            assert http.get(f"http://{host}:{port}/openapi.json").status_code == 200
            with pytest.raises(httpx.ConnectError):
                http.get(f"http://127.0.0.1:{port}/openapi.json")
        database = Path(printed(server, "database"))
        assert_stopped_cleanly(server, server.stop(signal.SIGINT), database)


def test_demo_stopped_with_sigterm_removes_its_temporary_database(
    tmp_path: Path,
):
    with demo(tmp_path) as server:
        database = Path(printed(server, "database"))
        assert database.exists()
        status = server.stop(signal.SIGTERM)
        output = server.output()
        assert "Application shutdown complete." in output and "Traceback" not in output, output
        assert status == 0, output
        assert not database.parent.exists(), f"{database.parent} was left behind"


def test_demo_with_a_port_that_is_not_a_number_exits_2():
    done = subprocess.run(
        [*COMMAND, "--port", "notanumber"],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "argument --port: invalid int value: 'notanumber'" in done.stderr
    assert done.stdout == ""  # nothing started
