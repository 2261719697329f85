"""What a ``LIMITER_REDIS_URL`` names when it is a Redis Cluster's:
``redis+cluster://[user:password@]host:port[,host:port...][/0]`` (TLS: ``rediss+cluster://``).
Pure parsing, so that settings can refuse a bad URL when they are loaded."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from limiter.errors import ConfigurationError

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}  # scheme -> TLS


@dataclass(frozen=True)
class ClusterAddress:
    """What a cluster URL names: its seed nodes, credentials and whether it uses TLS."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> ClusterAddress:
        """``redis+cluster://[user:password@]host:port[,host:port...][/0]``; anything else is
        a :class:`ConfigurationError` saying what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in CLUSTER_SCHEMES:
            raise ConfigurationError(f"not a cluster URL: {parts.scheme}://")
        if parts.path not in ("", "/", "/0"):
            raise ConfigurationError(
                f"a Redis Cluster has only database 0, not {parts.path.lstrip('/')!r}"
            )
        if parts.query or parts.fragment:
            raise ConfigurationError("a cluster URL takes no query string or fragment")
        credentials, _, hosts = parts.netloc.rpartition("@")
        username, _, password = credentials.partition(":")
        nodes = tuple(_host_port(seed) for seed in hosts.split(","))
        return cls(
            nodes,
            unquote(username) or None,
            unquote(password) or None,
            CLUSTER_SCHEMES[parts.scheme],
        )


def _host_port(seed: str) -> tuple[str, int]:
    host, _, port = seed.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"a cluster seed node is host:port, not {seed!r}")
    return host.strip("[]"), int(port)


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES
