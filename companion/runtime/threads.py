"""Running a blocking model call off the event loop in a daemon thread.

Daemon, not the default executor: a model load that takes seconds must never
keep the interpreter from exiting on Ctrl+C. Used by both local providers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["run_in_daemon_thread"]

T = TypeVar("T")


async def run_in_daemon_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a daemon thread so a long load never blocks interpreter exit on Ctrl+C."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def runner() -> None:
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            _hand_back(loop, _set_exception, future, exc)
        else:
            _hand_back(loop, _set_result, future, result)

    threading.Thread(target=runner, name="model-worker", daemon=True).start()
    return await future


def _hand_back(loop: asyncio.AbstractEventLoop, setter: Callable[..., None], future: asyncio.Future[Any], value: Any) -> None:
    """Give the outcome to the loop that waits for it, unless that loop has closed meanwhile (the process is
    shutting down, or whoever waited is gone): then nobody is left to tell."""
    try:
        loop.call_soon_threadsafe(setter, future, value)
    except RuntimeError:
        pass


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
