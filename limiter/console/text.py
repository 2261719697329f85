"""How the ``limiter`` console command writes its answers: aligned tables, the DAU bar chart,
amounts, and the JSON of the views the admin API answers with (:mod:`limiter.schemas`)."""

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

# The eighth-block characters, 1/8 to 7/8 of a character cell wide.
PARTIAL_BLOCKS = "▏▎▍▌▋▊▉"
FULL_BLOCK = "█"
NARROWEST_BAR = 10


def print_table(
    header: Sequence[str] | None, rows: Sequence[Sequence[str]], numeric: Collection[int] = ()
) -> None:
    """Columns two spaces apart; the ``numeric`` ones aligned right."""
    table = [header, *rows] if header is not None else list(rows)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def dau_chart(dau: Mapping[date, int], days: Sequence[date], columns: int) -> list[str]:
    """One line per day, ``YYYY-MM-DD  ████▌  12,345``, the busiest day's bar filling what
    the ``columns`` leave; bars are drawn in eighths of a character."""
    counts = [dau.get(day, 0) for day in days]
    peak = max(counts, default=0)
    count_width = len(f"{peak:,}")
    width = max(NARROWEST_BAR, columns - len("YYYY-MM-DD") - 4 - count_width)
    lines = []
    for day, count in zip(days, counts, strict=True):
        # Any login shows at least an eighth, so a quiet day is not mistaken for none.
        eighths = 0 if not count else max(1, count * width * 8 // peak)
        full, partial = divmod(eighths, 8)
        bar = FULL_BLOCK * full + (PARTIAL_BLOCKS[partial - 1] if partial else "")
        lines.append(f"{day}  {bar:<{width}}  {count:>{count_width},}")
    return lines


def print_json(view: BaseModel) -> None:
    """``view`` as indented JSON. Dates and instants are Python's ISO text: the console has
    always written UTC as ``+00:00``, where pydantic's JSON (the admin API's) writes ``Z``."""
    print(json.dumps(view.model_dump(), indent=2, ensure_ascii=False, default=_isoformat))


def _isoformat(value: object) -> str:
    if isinstance(value, date):  # a datetime as well
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def compact(value: Any) -> str:
    """A JSON value on one line, without spaces."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def money(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def on_day(day: date | None) -> str:
    return "" if day is None else f"on {day}"
