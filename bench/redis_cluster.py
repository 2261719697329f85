"""A Redis Cluster on localhost for the tests, the benchmarks and CI: ``masters`` masters with
one replica each, every node a ``redis-server`` on its own port keeping its files in its own
folder, joined by ``redis-cli --cluster create``, stopped by pid.

    python -m bench.redis_cluster start --dir D [--port 7000] [--masters 3]   # prints its URL
    python -m bench.redis_cluster stop --dir D

``start`` returns once every slot is served, every node agrees the cluster is ``ok`` and every
replica is in sync; the nodes keep running after it exits (their pids are in ``D/pids``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

START_SECONDS = 30.0
STOP_SECONDS = 10.0
POLL_SECONDS = 0.05
PIDS = "pids"
BUS = 10000  # a node's cluster bus port is its port + 10000


class ClusterError(RuntimeError):
    """The cluster could not be started (what is missing, or what did not come up)."""


def binaries() -> tuple[str, str]:
    """``redis-server`` and ``redis-cli``, or :class:`ClusterError` naming the missing one."""
    found = []
    for name in ("redis-server", "redis-cli"):
        path = shutil.which(name) or f"/usr/bin/{name}"
        if not os.access(path, os.X_OK):
            raise ClusterError(f"a local Redis Cluster needs {name} on PATH")
        found.append(path)
    return found[0], found[1]


@dataclass
class LocalCluster:
    """Nodes on ports ``port`` .. ``port + 2 * masters - 1``; ``node_timeout_ms`` is how long a
    master may be silent before its replica takes over (short in the failover test)."""

    directory: Path
    port: int = 7000
    masters: int = 3
    node_timeout_ms: int = 5000
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def ports(self) -> list[int]:
        return [self.port + i for i in range(2 * self.masters)]

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_timeout=2)

    def start(self) -> None:
        server, cli = binaries()
        self.directory.mkdir(parents=True, exist_ok=True)
        # each node also listens on its cluster bus, port + 10000
        taken = [p for port in self.ports for p in (port, port + BUS) if _listening(p)]
        if taken:
            raise ClusterError(f"ports already in use: {taken} (choose another --port)")
        try:
            self._start(server, cli)
        except BaseException:
            self.stop()
            raise
        (self.directory / PIDS).write_text(
            "\n".join(str(p.pid) for p in self.processes.values()) + "\n"
        )

    def _start(self, server: str, cli: str) -> None:
        for port in self.ports:  # a new cluster: no node remembers an earlier one
            (self.directory / str(port) / "nodes.conf").unlink(missing_ok=True)
            self.start_node(port, server)
        for port in self.ports:
            self._wait(lambda p=port: self.client(p).ping(), f"node {port} to answer")
        hosts = [f"127.0.0.1:{p}" for p in self.ports]
        created = subprocess.run(
            [cli, "--cluster", "create", *hosts, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
        )
        if created.returncode != 0:
            raise ClusterError(f"redis-cli --cluster create failed:\n{created.stdout}")
        self.wait_healthy()

    def start_node(self, port: int, server: str | None = None) -> None:
        """Start (or restart, with its cluster state) the node on ``port``."""
        folder = self.directory / str(port)
        folder.mkdir(exist_ok=True)
        arguments = [
            server or binaries()[0],
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)),
            *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
            *("--cluster-node-timeout", str(self.node_timeout_ms)),
            # the shards that are up keep serving while one has no master
            *("--cluster-require-full-coverage", "no"),
            *("--save", "", "--appendonly", "no", "--logfile", "redis.log"),
            *("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"),
        ]
        # nothing inherited: a node outlives `start` and must not hold its caller's pipes open
        self.processes[port] = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_healthy(self) -> None:
        """Until every node says the cluster is ok with all slots served and each replica is
        in sync with its master."""
        self._wait(self._healthy, "the cluster to be ok on every node")

    def _healthy(self) -> bool:
        for port in self.ports:
            node = self.client(port)
            info = node.cluster("INFO")
            if info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != 16384:
                return False
            replication = node.info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        return True

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (a crash) and reap it."""
        process = self.processes.pop(port)
        process.kill()
        process.wait(STOP_SECONDS)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_SECONDS)
        self.processes.clear()

    def _wait(self, ready: object, what: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if ready():  # type: ignore[operator]
                    return
            except (redis.RedisError, OSError) as exc:
                last = exc
            time.sleep(POLL_SECONDS)
        raise ClusterError(f"timed out after {START_SECONDS:.0f} s waiting for {what}: {last}")


def free_base_port(count: int = 6) -> int:
    """The first of ``count`` consecutive free ports on localhost whose cluster bus ports (port
    + 10000) are free too, all below the ephemeral range (32768 up); random, so that clusters
    started at the same time do not pick the same."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(11000, 22000 - count)
        if not any(_listening(p) for i in range(count) for p in (base + i, base + BUS + i)):
            return base
    raise ClusterError("no free range of ports for a cluster")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def stop_by_pids(directory: Path) -> int:
    """Stop the nodes a ``start`` left running; how many were still running."""
    pids = directory / PIDS
    if not pids.exists():
        return 0
    running = []
    for line in pids.read_text().split():
        try:
            os.kill(int(line), signal.SIGTERM)
            running.append(int(line))
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_SECONDS
    for pid in running:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(POLL_SECONDS)
        else:
            os.kill(pid, signal.SIGKILL)
    pids.unlink()
    return len(running)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_cluster")
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--dir", type=Path, required=True, help="the nodes' folders and pids")
    parser.add_argument("--port", type=int, default=7000, help="the first node's port")
    parser.add_argument("--masters", type=int, default=3)
    args = parser.parse_args(argv)
    if args.action == "stop":
        print(f"stopped {stop_by_pids(args.dir)} nodes")
        return 0
    stop_by_pids(args.dir)
    cluster = LocalCluster(args.dir, args.port, args.masters)
    try:
        cluster.start()
    except ClusterError as exc:
        print(f"redis_cluster: {exc}", file=sys.stderr)
        return 1
    print(cluster.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
