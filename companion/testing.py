"""Test helpers shipped with the package, for our tests and for plugin authors."""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from companion.llm.base import LLM, GenerationOptions, LLMChunk, LLMError, Message, ToolCall

Script = str | tuple[str, ToolCall]


class ScriptedLLM(LLM):
    """An LLM that streams a fixed reply token by token (optionally slowly, or failing).

    A reply given as ``(text, ToolCall(...))`` streams the text, then asks for
    that tool (a tool round); the next reply in the list answers after it.
    Records every prompt it was given in ``prompts``.
    """

    name = "scripted"

    def __init__(
        self,
        replies: Sequence[Script] = ("Hello! Nice to meet you.",),
        *,
        token_delay: float = 0.0,
        fail_with: LLMError | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.replies = list(replies)
        self.token_delay = token_delay
        self.sleep = sleep  # a VirtualClock's: the tokens come on virtual time
        self.fail_with = fail_with
        self.prompts: list[list[Message]] = []
        self.options: list[GenerationOptions] = []

    async def _stream(self, messages: list[Message], options: GenerationOptions) -> AsyncIterator[LLMChunk]:
        self.prompts.append(messages)
        self.options.append(options)
        if self.fail_with is not None:
            raise self.fail_with
        script = self.replies[(len(self.prompts) - 1) % len(self.replies)]
        reply, call = (script, None) if isinstance(script, str) else script
        for i, word in enumerate(reply.split(" ") if reply else []):
            if self.token_delay:
                await self.sleep(self.token_delay)
            yield LLMChunk(text=word if i == 0 else " " + word)
        if call is not None:
            yield LLMChunk(tool_calls=(call,), finish_reason="tool_calls")
            return
        yield LLMChunk(finish_reason="stop")


class VirtualClock:
    """Time that moves only when a test says so.

    Pass the clock as ``clock=`` and its ``sleep`` as ``sleep=`` to what keeps
    time (PacedOutput, PlaybackBuffer, AudioLevel, the avatar's lip sync, Turn
    timings, the speak-up policy); then ``await clock.advance(1.0)`` runs one
    second of their timers in order, at once, on a busy machine as on an idle
    one. Real I/O (a websocket, a subprocess) still takes real time: wait for
    its positive signal after advancing.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    @property
    def pending(self) -> list[float]:
        """When each sleeper wakes, soonest first (a positive signal that a timer is waiting)."""
        return sorted(deadline for deadline, _, future in self._sleepers if not future.done())

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._order), future))
        await future

    async def advance(self, seconds: float, *, settle: int = 8) -> None:
        """Move time forward by ``seconds``, waking every sleeper at its deadline and letting the loop run after each."""
        target = self.now + seconds
        for _ in range(settle):  # work started just now reaches its first sleep before time moves
            await asyncio.sleep(0)
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, deadline)
            if not future.done():
                future.set_result(None)
            for _ in range(settle):
                await asyncio.sleep(0)
        self.now = target
        for _ in range(settle):
            await asyncio.sleep(0)


async def feed_virtual(source: Any, samples: Any, clock: VirtualClock, block_ms: int = 20) -> None:
    """Push ``samples`` (16 kHz) into a ``QueueSource`` the way a microphone would, on ``clock``: each block goes in
    when the pipeline has taken the one before, then the clock moves on by the block's length. Seconds of speech
    take milliseconds, and what happens meanwhile (replies, playback, barge-in) happens at the same audio times
    on a busy machine as on an idle one."""
    from companion.voice.audio import INPUT_RATE

    block = INPUT_RATE * block_ms // 1000
    for i in range(0, len(samples), block):
        source.feed(samples[i : i + block])
        while source.pending():
            await asyncio.sleep(0)
        await clock.advance(block_ms / 1000)


async def eventually(
    check: Callable[[], object], *, timeout: float = 5.0, what: str = "the condition", every: float = 0.005
) -> None:
    """Wait until ``check()`` is true: for what a real peer (a socket, a thread, a subprocess) does in its own time.

    The one real-time wait our tests share: it returns as soon as the condition holds, so a fast machine is not
    slowed and a busy one is not failed early, and on timeout it says what never happened. ``check`` may be a
    coroutine function (ask the peer, then look).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    async def holds() -> bool:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    while not await holds():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(every)  # real time on purpose: the peer runs outside this loop's control


async def hang() -> None:
    """Block until cancelled (a tool, a server or an adapter that never answers)."""
    await asyncio.Event().wait()


async def supervised(adapter: Any, stop: asyncio.Event, *, first_delay: float = 0.2, max_delay: float = 2.0) -> Any:
    """Run ``adapter`` (an ``Adapter``, or anything with ``name`` and ``run(stop)``) under a real Supervisor until
    ``stop`` is set, as ``companion run`` would: it is started again when it raises. Returns the health board."""
    from companion.runtime.supervisor import FunctionAdapter, HealthBoard, Supervisor

    board = HealthBoard()
    supervisor = Supervisor(board, first_delay=first_delay, max_delay=max_delay)
    supervisor.start(FunctionAdapter(getattr(adapter, "name", "peer"), adapter.run))
    await stop.wait()
    await supervisor.stop(5.0)
    return board
