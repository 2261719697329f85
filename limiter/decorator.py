"""A plain decorator: reserve an action before a function runs, release it if the function raises.

Works on sync functions (with a :class:`Limiter`) and coroutine functions (with an
:class:`AsyncLimiter`). Each of the action's parameters is taken from the function's arguments:

    @guard(limiter, "add_members", app="sdkappid", group="group_id", users="member_ids")
    def add_members(sdkappid: str, group_id: str, member_ids: list[str]) -> None: ...

A source is the name of an argument, or a callable that receives the bound arguments as a dict
(for anything computed or constant: ``type=lambda args: "Public"``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from limiter.engine import AsyncLimiter, Limiter
from limiter.reservations import ACTION_PARAMETERS

P = ParamSpec("P")
R = TypeVar("R")
Source = str | Callable[[Mapping[str, Any]], Any]


def guard(
    limiter: Limiter | AsyncLimiter, action: str, /, **sources: Source
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Reserve ``action`` (see ``ACTION_PARAMETERS``) for the app and ids named by ``sources``.

    The function runs only if the whole action is allowed; otherwise :class:`Refused` is raised
    and nothing stays reserved. If the function raises, the reservation is released.
    """
    if action not in ACTION_PARAMETERS:
        raise TypeError(f"guard: unknown action {action!r}; known: {', '.join(ACTION_PARAMETERS)}")
    allowed = {"app", *ACTION_PARAMETERS[action]}
    unknown = set(sources) - allowed
    if unknown:
        raise TypeError(f"guard: {action} takes no {', '.join(sorted(unknown))}")
    if "app" not in sources:
        raise TypeError("guard: say where the app id comes from (app=...)")

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(function)
        for name, source in sources.items():
            if isinstance(source, str) and source not in signature.parameters:
                raise TypeError(
                    f"guard: {function.__qualname__} has no argument {source!r} ({name})"
                )

        def values(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            found = {
                name: bound.arguments[source]
                if isinstance(source, str)
                else source(bound.arguments)
                for name, source in sources.items()
            }
            return found.pop("app"), found

        if inspect.iscoroutinefunction(function):
            if not isinstance(limiter, AsyncLimiter):
                raise TypeError(f"guard: {function.__qualname__} is async: give an AsyncLimiter")
            async_limiter = limiter

            @functools.wraps(function)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                app, found = values(args, kwargs)
                reservation = await async_limiter.reserve(app, action, found)
                try:
                    return await cast(Callable[..., Any], function)(*args, **kwargs)
                except BaseException:
                    await async_limiter.release(reservation)
                    raise

            return cast(Callable[P, R], async_wrapper)

        if not isinstance(limiter, Limiter):
            raise TypeError(f"guard: {function.__qualname__} is not async: give a Limiter")
        sync_limiter = limiter

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            app, found = values(args, kwargs)
            reservation = sync_limiter.reserve(app, action, found)
            try:
                return function(*args, **kwargs)
            except BaseException:
                sync_limiter.release(reservation)
                raise

        return wrapper

    return decorate
