"""Every benchmark runs at smoke size on the real server, so the scripts cannot rot, and the
page ``python -m bench.all`` writes is rendered from their results.

The numbers of a smoke run mean nothing; what is checked is that each script runs end to end,
fills its table, and that its result round-trips through its JSON into the page.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bench.all import BENCHMARKS, document
from bench.common import Figure, read_json, write_json
from tests.conftest import REDIS_URL, real_redis_or_skip

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_at_smoke_size(name: str, results: Path) -> None:
    real_redis_or_skip().close()
    figure: Figure = importlib.import_module(f"bench.{name}").run(REDIS_URL, True)
    assert figure.name == name
    assert figure.rows, f"{name} measured nothing"
    assert all(len(row) == len(figure.columns) for row in figure.rows)
    write_json(figure, results / f"{name}.json", REDIS_URL, 1.0)
    assert read_json(results / f"{name}.json")[0] == figure
    real_redis_or_skip().close()  # leaves the test database empty for the next test


def test_the_page_shows_every_benchmark_and_every_target(results: Path) -> None:
    if len(list(results.glob("*.json"))) < len(BENCHMARKS):
        pytest.fail("the smoke runs above did not all leave a result")
    page = document(results)
    for name in BENCHMARKS:
        figure, _ = read_json(results / f"{name}.json")
        assert f"### {figure.title}" in page
        assert f"python -m bench.{name}" in page
        for target in figure.targets:
            assert f"| {name} | {target.name} | {target.value:g} |" in page
