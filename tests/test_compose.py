"""docker-compose.yml and the example's Dockerfile: Redis 7 with append-only persistence, the
example IM backend built from the checkout, waiting for Redis to be healthy and wired to it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from limiter import Settings
from limiter.urls import ClusterAddress

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "examples" / "im_backend" / "Dockerfile"
TOKEN = "compose-token-0123456789abcdef"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def words(command: Any) -> list[str]:
    """A compose ``command``/``test``: a list, or one string split as a shell would."""
    return [str(word) for word in command] if isinstance(command, list) else shlex.split(command)


def option(arguments: list[str], name: str) -> str | None:
    """The value after ``name`` in an argument list (``--name value``)."""
    return arguments[arguments.index(name) + 1] if name in arguments else None


def backend_service(compose: dict[str, Any]) -> dict[str, Any]:
    """The service built from the example's Dockerfile (whatever its name) in the default
    profile (the cluster profile has its own)."""
    built = [
        service
        for service in compose["services"].values()
        if not service.get("profiles")
        and isinstance(service.get("build"), dict)
        and service["build"].get("dockerfile") == "examples/im_backend/Dockerfile"
    ]
    assert len(built) == 1, compose["services"]
    return built[0]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # ["NAME=value", ...]
        env = dict(entry.split("=", 1) for entry in env)
    return {name: str(value) for name, value in env.items()}


def test_redis_is_redis_7_with_append_only_persistence_and_a_ping_healthcheck(
    compose: dict[str, Any],
):
    redis = compose["services"]["redis"]
    assert re.fullmatch(r"redis:7([.\-].*)?", redis["image"]), redis["image"]
    command = words(redis["command"])
    assert command[0] == "redis-server"
    assert option(command, "--appendonly") == "yes"
    assert option(command, "--appendfsync") == "everysec"
    test = words(redis["healthcheck"]["test"])
    assert test[0] in ("CMD", "CMD-SHELL")
    assert test[1:] == ["redis-cli", "ping"] or " ".join(test[1:]) == "redis-cli ping"
    # The append-only file lives on a volume, so it outlives the container.
    assert any(str(volume).split(":")[1] == "/data" for volume in redis["volumes"])


def test_the_backend_is_built_from_the_example_and_waits_for_a_healthy_redis(
    compose: dict[str, Any],
):
    backend = backend_service(compose)
    assert (ROOT / backend["build"]["context"]).resolve() == ROOT
    assert backend["depends_on"]["redis"]["condition"] == "service_healthy"

    env = environment_of(backend)
    assert re.fullmatch(r"redis://redis:6379(/\d+)?", env["LIMITER_REDIS_URL"])
    # The admin tokens come from the operator's LIMITER_ADMIN_TOKEN, required (":?").
    assert "LIMITER_ADMIN_TOKENS" in env
    assert re.search(r"\$\{LIMITER_ADMIN_TOKEN:\?[^}]*\}", env["LIMITER_ADMIN_TOKENS"])
    # The SQLite file sits on a volume mounted where IM_DB_PATH points.
    mounts = {str(volume).split(":")[1] for volume in backend["volumes"]}
    assert str(Path(env["IM_DB_PATH"]).parent) in mounts
    assert any(str(port).split(":")[-1] == "8000" for port in backend["ports"])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_dockerfile_copies_the_library_and_the_example_and_runs_uvicorn_on_port_8000():
    instructions = dockerfile_instructions()
    copied = {
        tuple(shlex.split(arguments)[:-1]): shlex.split(arguments)[-1]
        for keyword, arguments in instructions
        if keyword == "COPY"
    }
    sources = {source for group in copied for source in group}
    assert {"limiter", "examples", "pyproject.toml"} <= sources, copied
    commands = [arguments for keyword, arguments in instructions if keyword == "CMD"]
    assert commands, "no CMD"
    cmd = json.loads(commands[-1])  # the exec form: signals reach uvicorn
    assert cmd[:2] == ["uvicorn", "examples.im_backend.app:app"], cmd
    assert option(cmd, "--host") == "0.0.0.0"
    assert option(cmd, "--port") == "8000"
    env = " ".join(arguments for keyword, arguments in instructions if keyword == "ENV")
    assert "IM_DB_PATH=/data/" in env


def compose_client() -> list[str] | None:
    """``docker compose`` (the v2 plugin) when it works, else ``docker-compose``, else None."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def run_config(client: list[str], token: str | None) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("COMPOSE_") and name != "LIMITER_ADMIN_TOKEN"
    }
    if token is not None:
        env["LIMITER_ADMIN_TOKEN"] = token
    return subprocess.run(
        [*client, "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_docker_compose_config_accepts_the_file_and_requires_the_admin_token():
    client = compose_client()
    if client is None:
        pytest.skip("neither `docker compose` (v2 plugin) nor `docker-compose` is installed")

    done = run_config(client, TOKEN)
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)
    env = environment_of(backend_service(rendered))
    assert json.loads(env["LIMITER_ADMIN_TOKENS"]) == {"ops": TOKEN}

    missing = run_config(client, None)
    assert missing.returncode != 0
    assert "LIMITER_ADMIN_TOKEN" in missing.stderr


def test_the_cluster_profile_joins_six_nodes_and_runs_the_example_on_them(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    nodes = [name for name in services if name.startswith("redis-node-")]
    assert len(nodes) == 6
    for name in nodes:
        node = services[name]
        arguments = words(node["command"])
        assert node["profiles"] == ["cluster"]
        assert option(arguments, "--cluster-enabled") == "yes"
        assert option(arguments, "--cluster-require-full-coverage") == "no"
        assert option(arguments, "--appendonly") == "yes"
    init = services["redis-cluster-init"]
    assert set(init["depends_on"]) == set(nodes)
    assert "--cluster-replicas 1" in init["command"][0]
    backend = services["im-backend-cluster"]
    assert backend["depends_on"]["redis-cluster-init"]["condition"] == (
        "service_completed_successfully"
    )
    url = environment_of(backend)["LIMITER_REDIS_URL"]
    address = ClusterAddress.parse(url)
    assert {host for host, _ in address.nodes} <= set(nodes)
    assert Settings(redis_url=url).redis_url == url
