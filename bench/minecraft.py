"""Minecraft figures on a local flying-squid server: skill round trip, tool call -> action started, reconnection, Node RSS.

    .venv/bin/python bench/minecraft.py                 # a 10-minute session (RSS of the Node.js bot over time)
    .venv/bin/python bench/minecraft.py --seconds 60

Round trip: Python asks for a skill and gets its outcome back (`look`, which answers at once). Tool call ->
action started: from the engine's tool call (ToolRegistry.call, as the LLM's call is run) to the bot answering
that the action began (`follow` returns as soon as it starts). Reconnection: the server is stopped, restarted on
the same port, and the time until the bot has joined again is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from companion.minecraft.demo import DEMO_VERSION, LocalServer  # noqa: E402
from companion.minecraft.process import BotProcess  # noqa: E402
from companion.minecraft.skills import skill_tools  # noqa: E402
from companion.tools.registry import ToolContext, ToolRegistry  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(seconds: float) -> None:
    server = await LocalServer().start()
    stop = asyncio.Event()
    bot = BotProcess({"MC_HOST": "127.0.0.1", "MC_PORT": str(server.port), "MC_VERSION": DEMO_VERSION, "MC_PROTECT": "0"})
    task = asyncio.create_task(bot.run(stop))
    await asyncio.wait_for(bot.joined.wait(), 60)
    registry = ToolRegistry()
    for tool in skill_tools(bot):
        registry.register(tool)
    ctx = ToolContext("local", "cli", "bench", "owner")

    trips = []
    for _ in range(50):
        started = time.perf_counter()
        await bot.skill("look")
        trips.append((time.perf_counter() - started) * 1000)
    calls = []
    for _ in range(20):
        started = time.perf_counter()
        await registry.call("minecraft_say", '{"text": "hi"}', ctx)
        calls.append((time.perf_counter() - started) * 1000)
    print(f"skill round trip (look): median {statistics.median(trips):.1f} ms, p90 {sorted(trips)[44]:.1f} ms")
    print(f"tool call -> action started (minecraft_say through the tool registry): median {statistics.median(calls):.1f} ms")

    rejoin = []
    for _ in range(3):
        await server.stop()
        await asyncio.sleep(0.5)
        back = await LocalServer(port=server.port).start()
        server.proc = back.proc
        t0 = time.perf_counter()
        await asyncio.wait_for(bot.joined.wait(), 60)
        rejoin.append(time.perf_counter() - t0)
    print(f"reconnection after a server restart: median {statistics.median(rejoin):.2f} s ({', '.join(f'{r:.2f}' for r in rejoin)})")

    print("   t (s)   Node RSS (MiB)   collect+place cycles")
    t0 = time.monotonic()
    cycles = 0
    next_sample = t0
    while time.monotonic() - t0 < seconds:
        if time.monotonic() >= next_sample:
            print(f"  {time.monotonic() - t0:6.0f}   {rss_mib(bot.proc.pid):10.1f}   {cycles:6d}")
            next_sample += max(5.0, seconds / 12)
        dug = await bot.skill("collect", {"block": "grass_block", "count": 1, "owner": True}, 30)
        if dug.ok:
            await bot.skill("place", {"block": "dirt"}, 15)
        await bot.skill("look")
        cycles += 1
    print(f"  {time.monotonic() - t0:6.0f}   {rss_mib(bot.proc.pid):10.1f}   {cycles:6d}")
    stop.set()
    await task
    await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    asyncio.run(main(parser.parse_args().seconds))
