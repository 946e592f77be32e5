"""Reconnect with exponential backoff, logging an outage once, for every external connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Backoff"]


class Backoff:
    """``await backoff.failed(exc)`` after a failure (logs the first of a series, sleeps, grows the delay);
    ``backoff.ok()`` after a success. ``failed`` returns early when ``stop`` is set."""

    def __init__(
        self,
        name: str,
        stop: asyncio.Event,
        *,
        first: float = 1.0,
        cap: float = 60.0,
        log: logging.Logger | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.sleep = sleep  # a VirtualClock's in tests: fifty outages in milliseconds
        self.stop = stop
        self.first = first
        self.cap = cap
        self.delay = first
        self.reported = False
        self.log = log or logging.getLogger("companion")

    def ok(self) -> None:
        self.delay, self.reported = self.first, False

    async def failed(self, exc: BaseException) -> None:
        if not self.reported:
            self.log.warning("%s: connection lost (%s); reconnecting with backoff", self.name, exc or type(exc).__name__)
            self.reported = True
        await self.wait()

    async def wait(self) -> None:
        await self.wait_for(self.delay)
        self.delay = min(self.delay * 2, self.cap)

    async def wait_for(self, seconds: float) -> None:
        """Sleep ``seconds`` unless ``stop`` is set first."""
        if self.sleep is None:
            try:
                await asyncio.wait_for(self.stop.wait(), seconds)
            except TimeoutError:
                pass
            return
        nap, halt = asyncio.ensure_future(self.sleep(seconds)), asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait((nap, halt), return_when=asyncio.FIRST_COMPLETED)
        finally:
            nap.cancel()
            halt.cancel()
