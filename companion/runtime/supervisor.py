"""Every long-lived part supervised the same way, and one health board that says how each is doing.

A part of a 24/7 companion (VTube Studio, MCP servers, the microphone,
Discord, Twitch, YouTube, the LLM server) is an ``Adapter``: ``run(stop)``
serves until ``stop`` is set and raises when it breaks. The ``Supervisor``
runs each one, restarts it with the shared ``Backoff`` when it raises (one log
line per outage), and stops them all within a deadline at shutdown.

Parts that already reconnect by themselves report through ``AdapterStatus``
events; the ``HealthBoard`` records those and the supervisor's own view in
one table, which ``GET /health`` and ``companion status`` show. The board is
pure bookkeeping (a clock is injected), tested without an event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from companion.config.masking import mask
from companion.runtime.bus import EventBus
from companion.runtime.events import AdapterStatus

__all__ = ["Adapter", "Backoff", "FunctionAdapter", "HealthBoard", "AdapterHealth", "Supervisor", "normal_state", "LoopLag"]

log = logging.getLogger(__name__)

# What components report -> the board's few states.
_STATES = {
    "connected": "up", "up": "up", "ok": "up", "listening": "up",
    "reconnecting": "retrying", "retrying": "retrying", "connecting": "starting", "starting": "starting",
    "error": "failed", "failed": "failed", "off": "off", "stopped": "stopped",
}


def normal_state(state: str) -> str:
    """A component's own word for its state, as one of up/starting/retrying/failed/off/stopped."""
    return _STATES.get(state, state)


@dataclass
class AdapterHealth:
    name: str
    state: str = "starting"
    detail: str = ""
    last_error: str = ""
    changed_at: float = 0.0  # clock time of the last state change
    up_since: float | None = None  # clock time it last came up (None while not up)
    last_up: float | None = None  # clock time it last reported being up (kept when it goes down again)
    restarts: int = 0

    def view(self, now: float) -> dict[str, Any]:
        out = asdict(self)
        out.pop("changed_at")
        out.pop("up_since")
        out.pop("last_up")
        out["for_s"] = round(now - self.changed_at, 1)
        out["uptime_s"] = round(now - self.up_since, 1) if self.up_since is not None else 0.0
        return out


class LoopLag:
    """How late the event loop wakes up (a blocked loop delays every reply, lip sync and socket), over recent minutes."""

    def __init__(self, interval: float = 0.1, keep: int = 3000) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=keep)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            before = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, loop.time() - before - self.interval))

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        ordered = sorted(self.samples)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        return {"p50": round(pick(0.5) * 1000, 2), "p99": round(pick(0.99) * 1000, 2), "max": round(ordered[-1] * 1000, 2)}


@dataclass
class HealthBoard:
    """Each adapter's state, last error and uptime, from AdapterStatus events and the supervisor."""

    clock: Callable[[], float] = time.monotonic
    adapters: dict[str, AdapterHealth] = field(default_factory=dict)
    started_at: float = 0.0
    lag: LoopLag | None = None  # set while a companion runs

    def __post_init__(self) -> None:
        self.started_at = self.clock()

    def attach(self, bus: EventBus) -> "HealthBoard":
        bus.subscribe(AdapterStatus, self.on_status)
        return self

    def on_status(self, event: AdapterStatus) -> None:
        self.update(event.name, event.state, event.detail)

    def update(self, name: str, state: str, detail: str = "", *, restarted: bool = False) -> AdapterHealth:
        now = self.clock()
        health = self.adapters.get(name)
        if health is None:
            health = self.adapters[name] = AdapterHealth(name, changed_at=now)
        state = normal_state(state)
        detail = mask(detail)[:300]
        if state != health.state:
            health.changed_at = now
        if state == "up":
            health.last_up = now
        if state == "up" and health.up_since is None:
            health.up_since = now
        elif state != "up":
            health.up_since = None
        if state in ("retrying", "failed") and detail:
            health.last_error = detail
        health.state, health.detail = state, detail
        if restarted:
            health.restarts += 1
        return health

    def status(self) -> str:
        """"ok" when every adapter is up (or deliberately off/stopped), else "degraded"."""
        bad = [h for h in self.adapters.values() if h.state in ("retrying", "failed")]
        return "degraded" if bad else "ok"

    def report(self) -> dict[str, Any]:
        now = self.clock()
        out: dict[str, Any] = {
            "status": self.status(),
            "uptime_s": round(now - self.started_at, 1),
            "adapters": {name: h.view(now) for name, h in sorted(self.adapters.items())},
        }
        if self.lag is not None:
            out["loop_lag_ms"] = self.lag.summary()
        return out


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


class RetryLater(Exception):
    """Raised by an adapter that cannot go on until the user acts (approve the plugin in VTube Studio, fix a
    token): shown as failed on /health, and tried again after ``delay`` seconds instead of the usual backoff."""

    def __init__(self, message: str, delay: float = 30.0) -> None:
        super().__init__(message)
        self.delay = delay


class Adapter(ABC):
    """A long-lived connection or device: ``run`` serves until ``stop`` is set, and raises when it breaks.

    The supervisor is its one retry policy: an adapter does not loop to reconnect; it raises, and is run again
    after a delay that doubles from ``first_delay`` to ``max_delay`` and starts again once it was back up
    (``AdapterStatus(name, "connected")``). None: the supervisor's own delays.
    """

    name: str = "adapter"
    first_delay: float | None = None
    max_delay: float | None = None  # a peer on this machine (VTube Studio) is worth asking every few seconds

    @abstractmethod
    async def run(self, stop: asyncio.Event) -> None: ...


class FunctionAdapter(Adapter):
    """An adapter made of a ``run(stop)`` coroutine function (the existing loops of voice, avatar, chat...)."""

    def __init__(
        self, name: str, run: Callable[[asyncio.Event], Awaitable[None]], *, first_delay: float | None = None, max_delay: float | None = None
    ) -> None:
        self.name = name
        self._run = run
        self.first_delay, self.max_delay = first_delay, max_delay

    async def run(self, stop: asyncio.Event) -> None:
        await self._run(stop)


class Supervisor:
    """Runs adapters, restarts the ones that raise (with backoff), and stops them all within a deadline."""

    def __init__(
        self,
        board: HealthBoard,
        *,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.board = board
        self.sleep = sleep  # with the board's clock, a VirtualClock's in tests
        self.stop_event = asyncio.Event()
        self.first_delay, self.max_delay = first_delay, max_delay
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def listening(self, name: str, detail: str) -> None:
        """A server we started ourselves (web, games): up from now until shutdown."""
        self.board.update(name, "up", detail)

    def start(self, adapter: Adapter) -> None:
        self.board.update(adapter.name, "starting")
        self._tasks[adapter.name] = asyncio.create_task(self._keep(adapter), name=f"adapter-{adapter.name}")

    async def _keep(self, adapter: Adapter) -> None:
        first = adapter.first_delay if adapter.first_delay is not None else self.first_delay
        cap = adapter.max_delay if adapter.max_delay is not None else self.max_delay
        backoff = Backoff(adapter.name, self.stop_event, first=first, cap=cap, log=log, sleep=self.sleep)
        while not self.stop_event.is_set():
            started = self.board.clock()
            try:
                await adapter.run(self.stop_event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of one part is retried, never fatal
                if self.stop_event.is_set():
                    break
                health = self.board.adapters.get(adapter.name)
                if health is not None and health.last_up is not None and health.last_up >= started:
                    # It was connected again since the last failure (even if it has since said it is reconnecting,
                    # as MCP and the avatar do before they raise): a new outage starts the delays anew.
                    backoff.ok()
                log.debug("adapter %s failed", adapter.name, exc_info=True)
                if isinstance(exc, RetryLater):
                    if not backoff.reported:  # once a series, like every outage
                        log.error("%s: %s", adapter.name, exc)
                        backoff.reported = True
                    self.board.update(adapter.name, "failed", str(exc), restarted=True)
                    await backoff.wait_for(exc.delay)
                    continue
                self.board.update(adapter.name, "retrying", f"{type(exc).__name__}: {exc}", restarted=True)
                await backoff.failed(exc)
                continue
            # Returned by itself: it stopped on purpose (stop set, or it reported why it is off).
            health = self.board.adapters.get(adapter.name)
            if health is not None and health.state in ("starting", "up"):
                self.board.update(adapter.name, "stopped")
            return

    async def done(self) -> None:
        """Wait until every adapter has stopped (after ``stop``, or each returned by itself)."""
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def stop(self, timeout: float) -> None:
        """Ask every adapter to stop; cancel the ones still running at the deadline."""
        self.stop_event.set()
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.info("adapter %s did not stop within %.1f s; cancelled", task.get_name().removeprefix("adapter-"), timeout)
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for name in self._tasks:
            self.board.update(name, "stopped")
