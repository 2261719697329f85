"""The operation surface, written once: each operation of :mod:`limiter.ops` becomes a method
of the blocking engine, the asyncio engine and the request-bound handle through one descriptor
per mode, keeping its signature, its types and its docstring.

    class Limiter(Driven):
        register_users = blocking(accounts.register_users)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar, overload

from limiter.ops.context import Context, Op

P = ParamSpec("P")
T = TypeVar("T")


class Blocking(Protocol):
    """What a blocking engine offers its operations: their context and a driver."""

    context: Context

    def run(self, op: Op[T], app: str | None = None) -> T: ...


class Asynchronous(Protocol):
    """What an asyncio engine offers its operations: their context and a driver."""

    context: Context

    async def run(self, op: Op[T], app: str | None = None) -> T: ...


class AppBound(Protocol):
    """An asyncio engine bound to one app (the app is every operation's first argument)."""

    app: str

    @property
    def limiter(self) -> Asynchronous: ...


class _Surface(Generic[P, T]):
    """A descriptor built from an operation: the method is made once per engine, on first
    use, and kept on the instance (plain attribute lookups from then on)."""

    def __init__(self, function: Callable[..., Op[T]]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__
        # Operations on one app take it first (after the context): the driver checks that
        # app's data marker (limiter.marker) before running them.
        parameters = list(inspect.signature(function).parameters)
        self.on_app = parameters[1:2] == ["app"]

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def _keep(self, instance: Any, method: Callable[..., Any]) -> Any:
        functools.update_wrapper(method, self.function)
        instance.__dict__[self.name] = method
        return method


def _app(on_app: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The app a call names, when its operation takes one (and it is a string)."""
    if not on_app:
        return None
    app = args[0] if args else kwargs.get("app")
    return app if isinstance(app, str) else None


class blocking(_Surface[P, T]):
    """``Limiter.op(*args)`` runs ``op(context, *args)`` to its result."""

    def __init__(self, function: Callable[Concatenate[Context, P], Op[T]]) -> None:
        super().__init__(function)

    @overload
    def __get__(self, engine: None, owner: type) -> Self: ...
    @overload
    def __get__(self, engine: Blocking, owner: type) -> Callable[P, T]: ...
    def __get__(self, engine: Blocking | None, owner: type) -> Self | Callable[P, T]:
        if engine is None:
            return self
        function, run, context, on_app = self.function, engine.run, engine.context, self.on_app

        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return run(function(context, *args, **kwargs), _app(on_app, args, kwargs))

        return self._keep(engine, method)  # type: ignore[no-any-return]


class asynchronous(_Surface[P, T]):
    """``await AsyncLimiter.op(*args)`` runs ``op(context, *args)`` to its result."""

    def __init__(self, function: Callable[Concatenate[Context, P], Op[T]]) -> None:
        super().__init__(function)

    @overload
    def __get__(self, engine: None, owner: type) -> Self: ...
    @overload
    def __get__(self, engine: Asynchronous, owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, engine: Asynchronous | None, owner: type) -> Self | Callable[P, Awaitable[T]]:
        if engine is None:
            return self
        function, run, context, on_app = self.function, engine.run, engine.context, self.on_app

        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await run(function(context, *args, **kwargs), _app(on_app, args, kwargs))

        return self._keep(engine, method)  # type: ignore[no-any-return]


class bound(_Surface[P, T]):
    """``await BoundLimiter.op(*args)`` runs ``op(context, app, *args)`` on its engine."""

    def __init__(self, function: Callable[Concatenate[Context, str, P], Op[T]]) -> None:
        super().__init__(function)

    @overload
    def __get__(self, handle: None, owner: type) -> Self: ...
    @overload
    def __get__(self, handle: AppBound, owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, handle: AppBound | None, owner: type) -> Self | Callable[P, Awaitable[T]]:
        if handle is None:
            return self
        function, app = self.function, handle.app
        run, context = handle.limiter.run, handle.limiter.context

        async def method(*args: P.args, **kwargs: P.kwargs) -> T:
            return await run(function(context, app, *args, **kwargs), app)

        return self._keep(handle, method)  # type: ignore[no-any-return]
