"""The round trips an operation asks the store for: a script run or a pipeline of commands,
each with the decoder that turns its raw reply into a typed value."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

R = TypeVar("R")
Arg = str | int


def _as_is(reply: Any) -> Any:
    return reply


@dataclass(frozen=True, slots=True)
class ScriptCall(Generic[R]):
    """One run of a registered script: one round trip. Built by :mod:`limiter.store.scripts`."""

    script: str
    keys: tuple[str, ...]
    args: tuple[Arg, ...]
    decode: Callable[[Any], R] = field(default=_as_is, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.script


@dataclass(frozen=True, slots=True)
class Pipeline(Generic[R]):
    """Commands sent together in one (non-transactional) pipeline: one round trip. Reads, and
    the bulk loads of a rebuild; every limit decision is a :class:`ScriptCall` instead.
    Built by :mod:`limiter.store.reads` and :mod:`limiter.store.loads`."""

    commands: tuple[tuple[Arg, ...], ...]
    decode: Callable[[list[Any]], R] = field(default=_as_is, compare=False, repr=False)
    label: str = "pipeline"  # what metrics call it (``marker``: the data-set check)

    @property
    def name(self) -> str:
        return self.label


Request = ScriptCall[Any] | Pipeline[Any]


def call(request: ScriptCall[R] | Pipeline[R]) -> Generator[Request, Any, R]:
    """One round trip inside an operation: ``reply = yield from call(request)``, typed."""
    reply: R = yield request
    return reply


def pairs(reply: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """A flat reply cut into records of ``size`` values."""
    return [reply[i : i + size] for i in range(0, len(reply), size)]
