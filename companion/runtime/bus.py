"""A small typed event bus: subscribe by event class, publish, wait_for.

Modelled on discord.py's dispatch / wait_for / on_error: a handler that raises
is logged and isolated, so one broken plugin or adapter never stops the others
(or the publisher) from seeing an event.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from companion.runtime.events import Event

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[Any], Awaitable[None] | None]


class EventBus:
    """Routes events to handlers registered for the event's class or any base class."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Handler]] = {}
        self._waiters: list[tuple[type[Event], Callable[[Any], bool] | None, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None] | None]) -> Callable[[], None]:
        """Register ``handler`` for ``event_type``; returns a function that unsubscribes it."""
        if not (isinstance(event_type, type) and issubclass(event_type, Event)):
            raise TypeError(f"subscribe() needs an Event subclass, got {event_type!r}")
        self._handlers.setdefault(event_type, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(event_type, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Deliver ``event`` now to sync handlers and schedule async ones.

        Publishing never raises and never waits: the publisher is usually a
        latency-critical turn that must not stall behind a slow subscriber.
        """
        for cls in type(event).__mro__:
            if not (isinstance(cls, type) and issubclass(cls, Event)):
                continue
            for handler in list(self._handlers.get(cls, ())):
                self._call(handler, event)
        if self._waiters:
            remaining = []
            for event_type, check, future in self._waiters:
                if future.done():
                    continue
                if isinstance(event, event_type):
                    try:
                        matched = check is None or check(event)
                    except Exception as exc:  # a bad predicate fails its own waiter only
                        future.set_exception(exc)
                        continue
                    if matched:
                        future.set_result(event)
                        continue
                remaining.append((event_type, check, future))
            self._waiters = remaining

    async def wait_for(
        self,
        event_type: type[E],
        check: Callable[[E], bool] | None = None,
        timeout: float | None = None,
    ) -> E:
        """Wait for the next ``event_type`` matching ``check``; raises TimeoutError after ``timeout``."""
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()
        self._waiters.append((event_type, check, future))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if not future.done():
                future.cancel()

    async def drain(self) -> None:
        """Wait until async handlers scheduled so far have finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _call(self, handler: Handler, event: Event) -> None:
        try:
            result = handler(event)
        except Exception:
            log.exception("event handler %s failed on %s", _name(handler), type(event).__name__)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._guard(handler, event, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(handler: Handler, event: Event, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event handler %s failed on %s", _name(handler), type(event).__name__)


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
