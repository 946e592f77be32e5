"""Supervision: restarts with backoff, health bookkeeping, and a shutdown deadline."""

import asyncio

from companion.runtime.bus import EventBus
from companion.runtime.events import AdapterStatus
from companion.runtime.supervisor import Adapter, FunctionAdapter, HealthBoard, Supervisor
from companion.testing import VirtualClock


async def next_wake(clock: VirtualClock) -> None:
    """Move the virtual clock to the supervisor's next retry (it is waiting: a positive signal)."""
    for _ in range(100):
        if clock.pending:
            break
        await asyncio.sleep(0)
    await clock.advance(clock.pending[0] - clock.now)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_board_tracks_state_uptime_and_last_error():
    """Reported states map to up/retrying/failed; uptime counts from coming up; the last error stays visible."""
    clock = Clock()
    board = HealthBoard(clock=clock)
    board.update("avatar", "connected", "VTube Studio at ws://127.0.0.1:8001")
    clock.now += 30
    report = board.report()
    assert report["status"] == "ok"
    assert report["adapters"]["avatar"]["state"] == "up" and report["adapters"]["avatar"]["uptime_s"] == 30.0
    board.update("avatar", "reconnecting", "VTube Studio went away")
    clock.now += 5
    avatar = board.report()["adapters"]["avatar"]
    assert board.status() == "degraded"
    assert avatar["state"] == "retrying" and avatar["uptime_s"] == 0.0 and avatar["for_s"] == 5.0
    assert avatar["last_error"] == "VTube Studio went away"
    board.update("avatar", "connected", "back")
    assert board.status() == "ok" and board.adapters["avatar"].last_error == "VTube Studio went away"


def test_board_listens_to_adapter_status_events():
    """AdapterStatus published on the bus by any component lands on the board."""
    bus = EventBus()
    board = HealthBoard().attach(bus)
    bus.publish(AdapterStatus("mcp:files", "error", "command not found: npx"))
    assert board.adapters["mcp:files"].state == "failed" and "npx" in board.adapters["mcp:files"].last_error


async def test_a_crashing_adapter_is_restarted_with_backoff_and_counted():
    """An adapter that raises twice is restarted each time (after 10 ms, then 20 ms), then serves; restarts are counted."""
    clock = VirtualClock()
    board = HealthBoard(clock=clock)
    runs: list[float] = []

    class Flaky(Adapter):
        name = "flaky"

        async def run(self, stop: asyncio.Event) -> None:
            runs.append(clock.now)
            if len(runs) < 3:
                raise ConnectionError(f"refused #{len(runs)}")
            board.update(self.name, "connected")
            await stop.wait()

    supervisor = Supervisor(board, first_delay=0.01, max_delay=0.05, sleep=clock.sleep)
    supervisor.start(Flaky())
    await next_wake(clock)
    await next_wake(clock)
    assert board.adapters["flaky"].state == "up"
    assert [round(b - a, 3) for a, b in zip(runs, runs[1:])] == [0.01, 0.02]
    assert len(runs) == 3 and board.adapters["flaky"].restarts == 2
    assert board.adapters["flaky"].last_error == "ConnectionError: refused #2"
    await supervisor.stop(1.0)
    assert board.adapters["flaky"].state == "stopped"


async def test_stop_cancels_adapters_that_ignore_the_deadline():
    """An adapter that never looks at `stop` is cancelled at the deadline instead of holding shutdown."""
    board = HealthBoard()
    supervisor = Supervisor(board)
    cancelled = asyncio.Event()

    async def stubborn(stop: asyncio.Event) -> None:
        try:
            await asyncio.Event().wait()  # never looks at stop
        except asyncio.CancelledError:
            cancelled.set()
            raise

    supervisor.start(FunctionAdapter("stubborn", stubborn))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await supervisor.stop(0.2)
    assert cancelled.is_set() and loop.time() - started < 1.0


async def test_the_delay_starts_again_each_time_the_peer_was_back():
    """A peer that comes back and drops again, fifty times, is retried at the first delay every time, not ever later."""
    clock = VirtualClock()
    board = HealthBoard(clock=clock)
    runs: list[float] = []

    class Blinking(Adapter):
        name = "blinking"

        async def run(self, stop: asyncio.Event) -> None:
            runs.append(clock.now)
            board.update(self.name, "connected")  # back, healthy...
            board.update(self.name, "reconnecting", "dropped")  # ...says so itself, as MCP and the avatar do...
            raise ConnectionError("dropped")  # ...and gone again

    supervisor = Supervisor(board, first_delay=0.5, max_delay=30.0, sleep=clock.sleep)
    supervisor.start(Blinking())
    for _ in range(50):  # without the reset the 7th wait alone would be 0.5 * 2**6 = 32 s, capped at 30
        await next_wake(clock)
    await supervisor.stop(1.0)
    assert len(runs) == 51
    assert {round(b - a, 3) for a, b in zip(runs, runs[1:])} == {0.5}


async def test_a_peer_that_never_comes_back_is_retried_less_and_less_often():
    """Failures without a connection in between double the delay up to the cap."""
    clock = VirtualClock()
    board = HealthBoard(clock=clock)
    runs: list[float] = []

    class Down(Adapter):
        name = "down"

        async def run(self, stop: asyncio.Event) -> None:
            runs.append(clock.now)
            raise ConnectionError("refused")

    supervisor = Supervisor(board, first_delay=1.0, max_delay=30.0, sleep=clock.sleep)
    supervisor.start(Down())
    for _ in range(8):
        await next_wake(clock)
    await supervisor.stop(1.0)
    assert [round(b - a, 3) for a, b in zip(runs, runs[1:])] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert board.adapters["down"].state == "stopped" and board.adapters["down"].restarts == 9
