import asyncio
import logging

import pytest

from companion.runtime.bus import EventBus
from companion.runtime.events import Event, SentenceReady, TokenStreamed, TurnStarted


async def test_handlers_receive_events_of_their_class_and_subclasses():
    """A handler for Event sees everything; one for TokenStreamed sees only tokens."""
    bus = EventBus()
    everything, tokens = [], []
    bus.subscribe(Event, everything.append)
    bus.subscribe(TokenStreamed, tokens.append)
    bus.publish(TurnStarted("t1", "c", "s"))
    bus.publish(TokenStreamed("t1", "hi"))
    assert len(everything) == 2
    assert tokens == [TokenStreamed("t1", "hi")]


async def test_failing_handler_is_logged_and_others_still_run(caplog):
    """One broken subscriber cannot stop the others or the publisher."""
    bus = EventBus()
    seen = []

    def broken(event):
        raise RuntimeError("boom")

    async def broken_async(event):
        raise ValueError("async boom")

    bus.subscribe(TokenStreamed, broken)
    bus.subscribe(TokenStreamed, broken_async)
    bus.subscribe(TokenStreamed, seen.append)
    with caplog.at_level(logging.ERROR):
        bus.publish(TokenStreamed("t", "x"))
        await bus.drain()
    assert seen == [TokenStreamed("t", "x")]
    assert "boom" in caplog.text and "async boom" in caplog.text


async def test_wait_for_returns_matching_event_and_times_out():
    """wait_for resolves on the first matching event and raises TimeoutError otherwise."""
    bus = EventBus()
    waiter = asyncio.ensure_future(bus.wait_for(SentenceReady, lambda e: e.index == 1, timeout=1))
    await asyncio.sleep(0)
    bus.publish(SentenceReady("t", 0, "a", "a"))
    bus.publish(SentenceReady("t", 1, "b", "b"))
    assert (await waiter).text == "b"
    with pytest.raises(TimeoutError):
        await bus.wait_for(SentenceReady, timeout=0.05)


async def test_unsubscribe_stops_delivery():
    """The function returned by subscribe removes the handler."""
    bus = EventBus()
    seen = []
    off = bus.subscribe(TokenStreamed, seen.append)
    off()
    bus.publish(TokenStreamed("t", "x"))
    assert seen == []


def test_subscribe_rejects_non_event_types():
    """Subscribing to a bare string is refused: events are chosen by class."""
    with pytest.raises(TypeError):
        EventBus().subscribe("TokenStreamed", print)  # type: ignore[arg-type]
