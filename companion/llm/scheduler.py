"""One queue in front of the model, so that talking, playing and remembering never wait on each other.

Every model call (replies, forced game actions, commentary, speaking up,
memory extraction, summaries, tool rounds) goes through ``LLMScheduler``,
which admits at most ``capacity`` requests at once (llama.cpp's slots, one
for transformers, a configured limit for a server) in order of
``Priority`` and then arrival. Two rules keep the urgent work fast:

* Commentary and background work are *preemptible*: they start only while
  nothing more urgent runs or waits, and they are stopped (``LLMPreempted``)
  the moment more urgent work arrives. On a small CPU a second sequence in
  the batch slows the first, so "a free slot" is not enough.
* Replies and forced actions are never stopped by the scheduler; they queue
  by priority when every slot is busy.

A preempted reply ends like an interrupted one (the Turn handles that); a
preempted background job is retried by its owner, so nothing is lost.
The admission rule is a pure function (``admissible``), tested without a loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from companion.llm.base import LLM, GenerationOptions, LLMChunk, LLMError, LLMPreempted, Message, Priority, aclose
from companion.llm.chunks import clean_messages

log = logging.getLogger(__name__)

__all__ = ["LLMScheduler", "Ticket", "admissible", "to_preempt"]

PREEMPTIBLE = frozenset({Priority.COMMENTARY, Priority.BACKGROUND})


@dataclass(eq=False)
class Ticket:
    priority: Priority
    seq: int
    arrived: float = 0.0
    granted: asyncio.Future[None] | None = None
    preempted: asyncio.Future[None] | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (int(self.priority), self.seq)

    @property
    def preemptible(self) -> bool:
        return self.priority in PREEMPTIBLE


def admissible(ticket: Ticket, running: Iterable[Ticket], waiting: Iterable[Ticket], capacity: int) -> bool:
    """May ``ticket`` start now? (pure: the whole admission policy)"""
    running = list(running)
    if len(running) >= capacity:
        return False
    if any(w.key < ticket.key for w in waiting if w is not ticket):
        return False  # someone more urgent, or earlier at the same priority, goes first
    if ticket.preemptible and any(r.priority < ticket.priority for r in running):
        return False  # would slow down more urgent work sharing the CPU/GPU
    return True


def to_preempt(arriving: Ticket, running: Iterable[Ticket]) -> list[Ticket]:
    """The running tickets that ``arriving`` stops (pure)."""
    return [r for r in running if r.preemptible and r.priority > arriving.priority]


@dataclass
class SchedulerStats:
    """Waits in the queue per priority (ms), most recent last; for logs, the web UI and bench/."""

    waits_ms: dict[Priority, deque[float]] = field(default_factory=lambda: {p: deque(maxlen=1000) for p in Priority})
    preempted: dict[Priority, int] = field(default_factory=lambda: {p: 0 for p in Priority})


class LLMScheduler(LLM):
    """Wraps the configured provider; callers set ``GenerationOptions.priority``."""

    def __init__(self, inner: LLM, capacity: int | None = None) -> None:
        super().__init__(
            first_token_timeout=inner.first_token_timeout,
            idle_timeout=inner.idle_timeout,
            retries=inner.retries,
        )
        self.inner = inner
        self.capacity = max(1, capacity if capacity is not None else int(getattr(inner, "capacity", 1)))
        self._running: list[Ticket] = []
        self._waiting: list[Ticket] = []
        self._seq = itertools.count()
        self._idle = asyncio.Event()  # set while nothing runs on the model (an event, so nobody polls)
        self._idle.set()
        self.stats = SchedulerStats()

    # -- the provider's face ----------------------------------------------------

    @property  # the provider's name, whichever provider is inside now
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    def __getattr__(self, attr: str) -> Any:
        # supports_tools, supports_images, last_timings, is_default...: the provider's
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def warm(self, messages: list[Message]) -> None:
        await self.inner.warm(clean_messages(messages))

    async def check(self) -> str:
        return await self.inner.check()

    async def prefill(self, messages: list[Message], cache_key: str, read_to: str = "") -> bool:
        """Read ``messages`` into the cache kept under ``cache_key`` now, so the request that continues them reads
        only what is new. Only for a provider that keeps a cache per key (``prefills_ahead``: llama.cpp); background
        work, stopped by the first reply or action that arrives. True if the prompt was read.

        ``read_to``: text in the last message where reading stops (what follows is not known yet)."""
        if not getattr(self.inner, "prefills_ahead", False):
            return False
        options = GenerationOptions(
            max_tokens=1, temperature=0.0, priority=Priority.BACKGROUND, cache_key=cache_key, read_to=read_to
        )
        saved = getattr(self.inner, "saved", None)
        if saved is not None:
            await saved()  # the reply just ended may still be writing its slot: read ahead in that slot, not another
        try:
            async for _ in self.stream(messages, options):
                pass
        except LLMPreempted:
            return False
        except LLMError as exc:
            log.debug("scheduler: prefill failed: %s", exc)
            return False
        return True

    async def count_tokens(self, texts: list[str]) -> list[int]:
        return await self.inner.count_tokens(texts)

    def busy(self, below: Priority = Priority.BACKGROUND) -> bool:
        """True while work more urgent than ``below`` runs or waits."""
        return any(t.priority < below for t in (*self._running, *self._waiting))

    async def idle(self) -> None:
        """Return once no call runs on the model (a provider switch closes the old one then)."""
        while self._running or self._waiting:
            await self._idle.wait()
            await asyncio.sleep(0)  # let a call granted in the same step register before checking again

    # -- scheduling ---------------------------------------------------------------

    async def stream(self, messages: list[Message], options: GenerationOptions | None = None) -> AsyncIterator[LLMChunk]:
        options = options or GenerationOptions()
        messages = clean_messages(messages)
        ticket = await self._acquire(options.priority)
        agen = self.inner.stream(messages, options).__aiter__()
        try:
            while True:
                if ticket.preemptible:
                    chunk = await self._next_or_preempt(agen, ticket)
                else:
                    try:
                        chunk = await agen.__anext__()
                    except StopAsyncIteration:
                        return
                if chunk is None:
                    return
                yield chunk
        finally:
            try:
                await aclose(agen)
            finally:
                self._release(ticket)

    async def _next_or_preempt(self, agen: AsyncIterator[LLMChunk], ticket: Ticket) -> LLMChunk | None:
        assert ticket.preempted is not None
        if ticket.preempted.done():
            raise LLMPreempted("more urgent work took the model")
        step = asyncio.ensure_future(agen.__anext__())
        try:
            await asyncio.wait({step, cast("asyncio.Future[Any]", ticket.preempted)}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled from outside: the generator must stop before it can be closed
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)
            raise
        if not step.done():
            step.cancel()
            await asyncio.gather(step, return_exceptions=True)
            raise LLMPreempted("more urgent work took the model")
        try:
            return step.result()
        except StopAsyncIteration:
            return None

    async def _acquire(self, priority: Priority) -> Ticket:
        loop = asyncio.get_running_loop()
        ticket = Ticket(Priority(priority), next(self._seq), time.perf_counter(), loop.create_future(), loop.create_future())
        for victim in to_preempt(ticket, self._running):
            if victim.preempted is not None and not victim.preempted.done():
                victim.preempted.set_result(None)
                self.stats.preempted[victim.priority] += 1
                log.debug("scheduler: %s preempted by %s", victim.priority.name, ticket.priority.name)
        self._waiting.append(ticket)
        self._dispatch()
        try:
            assert ticket.granted is not None
            await ticket.granted
        except BaseException:
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            elif ticket in self._running:
                self._running.remove(ticket)
            self._dispatch()
            raise
        self.stats.waits_ms[ticket.priority].append((time.perf_counter() - ticket.arrived) * 1000)
        return ticket

    def _release(self, ticket: Ticket) -> None:
        if ticket in self._running:
            self._running.remove(ticket)
        self._dispatch()

    def _dispatch(self) -> None:
        for ticket in sorted(self._waiting, key=lambda t: t.key):
            if admissible(ticket, self._running, self._waiting, self.capacity):
                self._waiting.remove(ticket)
                self._running.append(ticket)
                assert ticket.granted is not None
                if not ticket.granted.done():
                    ticket.granted.set_result(None)
        if self._running or self._waiting:
            self._idle.clear()
        else:
            self._idle.set()

    def _stream(self, messages: list[Message], options: GenerationOptions) -> AsyncIterator[LLMChunk]:
        # Only to satisfy the base class: ``stream`` above schedules the provider's own ``stream``,
        # which already carries the timeouts and retries; this path is the provider's, unscheduled.
        return self.inner.stream(messages, options)
