"""Blocking model calls in daemon threads: their outcome reaches the loop, or nobody if the loop is gone."""

from __future__ import annotations

import asyncio
import threading

from companion.runtime.threads import run_in_daemon_thread


async def test_the_result_comes_back_to_the_awaiting_coroutine():
    """A call that returns hands its value back; one that raises hands its exception back."""
    assert await run_in_daemon_thread(lambda: 41 + 1) == 42
    try:
        await run_in_daemon_thread(lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("the exception was lost")


def test_a_call_that_ends_after_its_loop_closed_ends_quietly():
    """A model call still running when the loop closes (a shutdown, a test's end) finishes without a traceback from
    its thread: nobody is left to hand the result to."""
    release = threading.Event()
    errors: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        loop = asyncio.new_event_loop()
        task = loop.create_task(run_in_daemon_thread(lambda: release.wait(10)))
        loop.run_until_complete(asyncio.sleep(0))  # one loop turn: the thread has started
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        loop.close()
        workers = [t for t in threading.enumerate() if t.name == "model-worker"]
        release.set()
        for worker in workers:
            worker.join(10)
    finally:
        threading.excepthook = previous
    assert workers and errors == []
