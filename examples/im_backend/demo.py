"""The example backend on localhost, ready for the README's tour:

    python -m examples.im_backend.demo [--host H] [--port P]

The store is ``LIMITER_REDIS_URL``, or an in-process one when it is unset (counters live in
this process only); the database is a temporary SQLite file unless ``IM_DB_PATH`` is set; the
admin token is generated and printed unless ``LIMITER_ADMIN_TOKENS`` is set.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from examples.im_backend.app import create_app
from limiter.cli import EXIT_FAILED
from limiter.errors import ConfigurationError
from limiter.settings import load_settings

DEMO_STORE = "memory://demo"
DEMO_TOKEN_NAME = "demo"


def serve(host: str, port: int) -> None:
    """Run the example until interrupted; raises ``ConfigurationError`` on bad settings."""
    overrides: dict[str, Any] = {}
    if not os.environ.get("LIMITER_REDIS_URL"):
        overrides["redis_url"] = DEMO_STORE
    token = None
    if not os.environ.get("LIMITER_ADMIN_TOKENS"):
        token = secrets.token_urlsafe(24)
        overrides["admin_tokens"] = {DEMO_TOKEN_NAME: token}
    settings = load_settings(**overrides)
    with tempfile.TemporaryDirectory(prefix="limiter-demo-") as scratch:
        db_path = os.environ.get("IM_DB_PATH") or str(Path(scratch) / "im.sqlite3")
        app = create_app(settings, db_path=db_path)
        base = f"http://{host}:{port}"
        if settings.redis_url == DEMO_STORE:
            store = (
                "in-process (LIMITER_REDIS_URL unset): counters are per-process and lost at exit"
            )
        else:
            store = settings.redis_url.split("@")[-1]  # no password in the log
        lines = [
            f"limiter demo: the example IM backend on {base}",
            f"  store:       {store}",
            f"  database:    {db_path}",
            f"  admin token: {token}" if token else "  admin tokens from LIMITER_ADMIN_TOKENS",
            f"  try:         curl -s '{base}/v4/im_open_login_svc/account_import"
            '?sdkappid=1400000001\' -d \'{"UserID": "alice"}\'',
            f"  API docs:    {base}/docs",
        ]
        print("\n".join(lines), flush=True)
        # uvicorn shuts down gracefully on SIGTERM and then re-raises it with the handler it
        # found: make that an exit, so the temporary database is removed as with Ctrl-C.
        signal.signal(signal.SIGTERM, _exit)
        uvicorn.run(app, host=host, port=port, log_level="info")


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.im_backend.demo",
        description="Run the example IM backend on localhost "
        "(in-process store without LIMITER_REDIS_URL).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port)
    except ConfigurationError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
