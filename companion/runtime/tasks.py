"""Background tasks that are never lost: a reference is kept until they end, and a failure is logged.

``asyncio.create_task`` without a kept reference may be garbage-collected
mid-run, and its exception is reported only as "Task exception was never
retrieved" at exit, if at all. Everything the companion starts in the
background goes through ``spawn``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["spawn", "running"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_tasks: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _tasks.add(task)
    task.add_done_callback(_finished)
    return task


def running() -> int:
    """How many spawned tasks have not ended (tests, and the soak's leak check)."""
    return len(_tasks)


def _finished(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task %s failed: %s: %s", task.get_name(), type(exc).__name__, exc, exc_info=exc)
