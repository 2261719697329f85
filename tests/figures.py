"""The reliability figures: tests record what they tried, the run writes the table.

A test takes the ``figures`` fixture and records counts as it goes::

    figures.record("races", "operations raced (8 processes)", 4000)

``python -m pytest --figures=docs/reliability.md`` writes every recorded figure, with the
outcome of the test that recorded it, as a Markdown table; without ``--figures`` nothing is
written. Tests marked ``heavy`` are deselected unless ``--heavy`` is given. (Write the ``=``:
pytest reads a bare option value it does not know yet as a path to collect.)
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest


@dataclass
class Figure:
    area: str
    what: str
    value: int
    test: str
    outcome: str = "not finished"


@dataclass
class FigureBook:
    figures: list[Figure] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def table(self, heavy: bool) -> str:
        """One row per (area, what): the counts summed over every test (and parametrization)
        that recorded it, how many tests those were, their files, and whether all passed."""
        rows: dict[tuple[str, str], list[Figure]] = {}
        for figure in self.figures:
            rows.setdefault((figure.area, figure.what), []).append(figure)
        lines = [
            "<!-- written by `python -m pytest --figures=docs/reliability.md`; do not edit -->",
            "# Reliability figures",
            "",
            f"Run {self.started:%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'} "
            f"(Python {sys.version.split()[0]}, {platform.machine()}), "
            f"{'with' if heavy else 'without'} the heavy runs (`--heavy`). Each row sums a "
            "count that tests recorded while they ran (over fakeredis and the real server, sync "
            "and async, where a test runs on several), and says whether all of them passed.",
            "",
            "| area | what | count | tests | in | result |",
            "|---|---|---:|---:|---|---|",
        ]
        for (area, what), recorded in sorted(rows.items()):
            tests = {figure.test: figure.outcome for figure in recorded}
            failed = sum(outcome != "passed" for outcome in tests.values())
            files = sorted({test.split("::")[0].removeprefix("tests/") for test in tests})
            result = "passed" if not failed else f"**FAILED** ({failed} of {len(tests)})"
            total = sum(figure.value for figure in recorded)
            lines.append(
                f"| {area} | {what} | {total:,} | {len(tests)} | {', '.join(files)} | {result} |"
            )
        return "\n".join(lines) + "\n"


_BOOK = FigureBook()


class Recorder:
    """What one test hands to ``figures``: ``record(area, what, count)``."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.recorded: list[Figure] = []

    def record(self, area: str, what: str, value: int) -> None:
        figure = Figure(area, what, value, self.test)
        self.recorded.append(figure)
        _BOOK.figures.append(figure)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--figures",
        metavar="PATH",
        help="write the reliability figures the tests record to PATH (Markdown)",
    )
    parser.addoption("--heavy", action="store_true", help="also run the tests marked heavy")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "heavy: a long run (minutes); deselected unless --heavy is given"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--heavy"):
        return
    heavy = [item for item in items if item.get_closest_marker("heavy")]
    if heavy:
        config.hook.pytest_deselected(items=heavy)
        items[:] = [item for item in items if not item.get_closest_marker("heavy")]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    recorder = Recorder(request.node.nodeid)
    yield recorder
    report = getattr(request.node, "_call_report", None)
    outcome = "passed" if report is not None and report.passed else "failed"
    for figure in recorder.recorded:
        figure.outcome = outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if call.when == "call":
        item._call_report = report  # type: ignore[attr-defined]
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--figures")
    if path and _BOOK.figures:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(_BOOK.table(bool(session.config.getoption("--heavy"))))
