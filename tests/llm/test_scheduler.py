"""The one LLM scheduler: priorities, preemption, nothing lost."""

import asyncio

import pytest

from companion.llm.base import GenerationOptions, LLMPreempted, Priority
from companion.llm.scheduler import LLMScheduler, Ticket, admissible, to_preempt
from companion.testing import ScriptedLLM, VirtualClock

LONG = " ".join(f"word{i}" for i in range(60))


def t(priority: Priority, seq: int) -> Ticket:
    return Ticket(priority, seq)


# -- the pure policy ----------------------------------------------------------------


def test_more_urgent_waiting_work_goes_first():
    """A waiting reply is admitted before an earlier forced action; equal priorities keep arrival order."""
    reply, force, force2 = t(Priority.REPLY, 5), t(Priority.FORCED_ACTION, 1), t(Priority.FORCED_ACTION, 2)
    waiting = [reply, force, force2]
    assert admissible(reply, [], waiting, 1)
    assert not admissible(force, [], waiting, 1)
    assert not admissible(force2, [], [force, force2], 2)
    assert admissible(force, [], [force, force2], 2)


def test_preemptible_work_waits_while_anything_more_urgent_runs_even_with_free_slots():
    """Commentary and memory work do not share the model with a reply, whatever the slot count."""
    running = [t(Priority.REPLY, 0)]
    assert not admissible(t(Priority.COMMENTARY, 1), running, [], 4)
    assert not admissible(t(Priority.BACKGROUND, 2), running, [], 4)
    assert admissible(t(Priority.FORCED_ACTION, 3), running, [], 2)  # not preemptible: takes a free slot
    assert not admissible(t(Priority.FORCED_ACTION, 3), running, [], 1)


def test_arrivals_preempt_only_less_urgent_preemptible_work():
    """A force stops commentary and memory work, never a reply; commentary stops only memory work."""
    reply, comment, memory = t(Priority.REPLY, 0), t(Priority.COMMENTARY, 1), t(Priority.BACKGROUND, 2)
    running = [reply, comment, memory]
    assert to_preempt(t(Priority.FORCED_ACTION, 3), running) == [comment, memory]
    assert to_preempt(t(Priority.COMMENTARY, 4), running) == [memory]
    assert to_preempt(t(Priority.BACKGROUND, 5), running) == []


# -- with scripted slow providers -------------------------------------------------------


async def _drain(llm, options: GenerationOptions, messages=None) -> str:
    return "".join([c.text async for c in llm.stream(messages or [{"role": "user", "content": "hi"}], options)])


async def finish(clock: VirtualClock, work, step: float = 0.01):
    """Run ``work`` to the end, moving the virtual clock on while it writes."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await clock.advance(step)
    return await task


async def test_commentary_is_preempted_by_a_force_that_arrives_with_its_context():
    """A force arriving while commentary is being written stops it at once and runs without waiting."""
    clock = VirtualClock()
    sched = LLMScheduler(ScriptedLLM([LONG, "{}"], token_delay=0.01, sleep=clock.sleep), capacity=2)
    got: list[str] = []

    async def commentary() -> None:
        async for chunk in sched.stream([{"role": "user", "content": "context"}], GenerationOptions(priority=Priority.COMMENTARY)):
            got.append(chunk.text)

    task = asyncio.create_task(commentary())
    await clock.advance(0.05)
    assert got  # commentary is being written
    started = clock.now
    force = await finish(clock, _drain(sched, GenerationOptions(priority=Priority.FORCED_ACTION)))
    waited = sched.stats.waits_ms[Priority.FORCED_ACTION][-1]
    with pytest.raises(LLMPreempted):
        await task
    assert force
    assert waited < 50
    assert clock.now - started < 0.5  # the force did not wait for 60 words of commentary
    assert len(got) < 30
    assert sched.stats.preempted[Priority.COMMENTARY] == 1


async def test_commentary_queued_behind_a_force_never_starts_first():
    """Commentary and a force that arrive in the same instant: the force is answered first."""
    provider = ScriptedLLM(["comment one two three", '{"a": 1}'], token_delay=0.005)
    sched = LLMScheduler(provider, capacity=1)
    order: list[str] = []

    async def run(name: str, priority: Priority) -> None:
        try:
            await _drain(sched, GenerationOptions(priority=priority))
            order.append(name)
        except LLMPreempted:
            order.append(name + " preempted")

    blocker = asyncio.create_task(run("reply", Priority.REPLY))
    await asyncio.sleep(0)
    comment = asyncio.create_task(run("comment", Priority.COMMENTARY))
    force = asyncio.create_task(run("force", Priority.FORCED_ACTION))
    await asyncio.gather(blocker, comment, force)
    assert order == ["reply", "force", "comment"]


async def test_background_work_yields_to_a_reply_and_can_be_retried():
    """Memory work is preempted when a reply arrives, the reply waits only briefly, and a retry completes."""
    clock = VirtualClock()
    sched = LLMScheduler(ScriptedLLM([LONG], token_delay=0.01, sleep=clock.sleep), capacity=2)
    background = asyncio.create_task(_drain(sched, GenerationOptions(priority=Priority.BACKGROUND)))
    await clock.advance(0.05)
    reply = await finish(clock, _drain(sched, GenerationOptions(priority=Priority.REPLY)))
    assert reply.startswith("word0")
    with pytest.raises(LLMPreempted):
        await background
    assert sched.stats.waits_ms[Priority.REPLY][-1] < 50
    retried = await finish(clock, _drain(sched, GenerationOptions(priority=Priority.BACKGROUND)))
    assert retried.endswith("word59")


async def test_background_work_does_not_start_while_a_reply_runs():
    """Queued memory work waits for the reply to finish instead of sharing the model."""
    clock = VirtualClock()
    provider = ScriptedLLM(["one two three four five six"], token_delay=0.01, sleep=clock.sleep)
    sched = LLMScheduler(provider, capacity=2)
    finished: list[str] = []

    async def run(name: str, priority: Priority) -> None:
        await _drain(sched, GenerationOptions(priority=priority))
        finished.append(name)

    reply = asyncio.create_task(run("reply", Priority.REPLY))
    await clock.advance(0.01)
    memory = asyncio.create_task(run("memory", Priority.BACKGROUND))
    await clock.advance(0.01)
    assert sched.busy()
    await finish(clock, asyncio.gather(reply, memory))
    assert finished == ["reply", "memory"]


async def test_a_cancelled_waiter_leaves_the_queue():
    """A request cancelled while waiting for a slot does not block the ones behind it."""
    clock = VirtualClock()
    sched = LLMScheduler(ScriptedLLM(["a b c d e f g h"], token_delay=0.01, sleep=clock.sleep), capacity=1)
    first = asyncio.create_task(_drain(sched, GenerationOptions()))
    await clock.advance(0.005)
    waiting = asyncio.create_task(_drain(sched, GenerationOptions()))
    await clock.advance(0.005)
    waiting.cancel()
    await finish(clock, first)
    assert await finish(clock, _drain(sched, GenerationOptions()))
    assert not sched._waiting and not sched._running


async def test_server_providers_are_limited_to_their_concurrency():
    """At most `capacity` requests reach the provider at once; the rest wait their turn."""
    active = 0
    peak = 0

    class Counting(ScriptedLLM):
        async def _stream(self, messages, options):
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            try:
                async for chunk in super()._stream(messages, options):
                    yield chunk
            finally:
                active -= 1

    sched = LLMScheduler(Counting(["x y z"], token_delay=0.005), capacity=3)
    results = await asyncio.gather(*(_drain(sched, GenerationOptions()) for _ in range(8)))
    assert all(r == "x y z" for r in results)
    assert peak == 3


async def test_preemptible_work_cancelled_from_outside_closes_cleanly():
    """Cancelling the task that reads a preemptible stream stops the provider without 'generator already running'."""
    clock = VirtualClock()
    sched = LLMScheduler(ScriptedLLM([LONG], token_delay=0.01, sleep=clock.sleep), capacity=1)
    task = asyncio.create_task(_drain(sched, GenerationOptions(priority=Priority.BACKGROUND)))
    await clock.advance(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not sched._running
    assert await finish(clock, _drain(sched, GenerationOptions()))
