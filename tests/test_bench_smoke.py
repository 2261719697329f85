"""Every benchmark runs at smoke size on the real server, so the scripts cannot rot.

The numbers of a smoke run mean nothing; what is checked is that each script runs end to end
and fills its table.
"""

from __future__ import annotations

import importlib

import pytest

from bench.all import BENCHMARKS
from bench.common import Figure
from tests.conftest import REDIS_URL, real_redis_or_skip

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_at_smoke_size(name: str) -> None:
    real_redis_or_skip().close()
    figure: Figure = importlib.import_module(f"bench.{name}").run(REDIS_URL, True)
    assert figure.name == name
    assert figure.rows, f"{name} measured nothing"
    assert all(len(row) == len(figure.columns) for row in figure.rows)
    real_redis_or_skip().close()  # leaves the test database empty for the next test
