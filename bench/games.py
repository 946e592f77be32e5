"""Neuro API decision latency: N forces from a scripted game client over a real websocket.

Prints, for a fake instant LLM and for the embedded default model: decision
latency (force sent -> action received, at the game) median and p90, the time
the LLM decision itself took, the server's own overhead (round trip minus
decision), the share of first-try schema-valid actions and how many fallbacks
were used. Target with the fake instant LLM: server overhead < 5 ms per force.

    .venv/bin/python bench/games.py --forces 100 --model-forces 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path

import aiohttp

from companion.adapters.neuro_api import GameActionSent, NeuroGameServer
from companion.bus import EventBus
from companion.config import GamesSection
from companion.games.decider import ActionDecider
from companion.llm.base import LLM
from companion.testing import ScriptedLLM

SCHEMA = {
    "type": "object",
    "properties": {"cell": {"type": "integer", "minimum": 1, "maximum": 9}, "taunt": {"type": "string"}},
    "required": ["cell"],
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run(llm: LLM, forces: int, title: str) -> None:
    bus = EventBus()
    sent: list[GameActionSent] = []
    bus.subscribe(GameActionSent, sent.append)
    server = NeuroGameServer(
        ActionDecider(llm, attempts=3, timeout=30, max_tokens=60, rng=random.Random(0)),
        GamesSection(port=0, chattiness=0),
        bus=bus,
    )
    await server.start()
    round_trips: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"http://127.0.0.1:{server.port}/") as ws:
                async def send(command: str, data: dict | None = None) -> None:
                    await ws.send_str(json.dumps({"command": command, "game": "bench", **({"data": data} if data else {})}))

                await send("startup")
                await ws.receive(timeout=5)
                await send("actions/register", {"actions": [
                    {"name": "place", "description": "Place a mark on cell 1-9", "schema": SCHEMA},
                    {"name": "pass", "description": "Skip the turn"},
                ]})
                for i in range(forces):
                    start = time.perf_counter()
                    await send("actions/force", {"query": f"Move {i}: pick a cell", "state": "board: empty", "action_names": ["place", "pass"]})
                    while True:
                        msg = json.loads((await ws.receive(timeout=120)).data)
                        if msg["command"] == "action":
                            break
                    round_trips.append((time.perf_counter() - start) * 1000)
                    await send("action/result", {"id": msg["data"]["id"], "success": True})
    finally:
        await server.stop()
    decisions = [e.decision_ms for e in sent]
    overhead = [rt - d for rt, d in zip(round_trips, decisions)]
    first_try = sum(1 for e in sent if e.attempts == 1 and not e.fallback)
    fallbacks = sum(1 for e in sent if e.fallback)
    print(f"\n{title}: {forces} forces")
    print(f"  decision latency at the game: median {statistics.median(round_trips):9.2f} ms   p90 {pct(round_trips, 0.9):9.2f} ms")
    print(f"  LLM decision time:            median {statistics.median(decisions):9.2f} ms   p90 {pct(decisions, 0.9):9.2f} ms")
    print(f"  server overhead per force:    median {statistics.median(overhead):9.2f} ms   p90 {pct(overhead, 0.9):9.2f} ms")
    print(f"  first-try schema-valid: {first_try}/{forces} ({100 * first_try / forces:.0f}%)   fallbacks used: {fallbacks}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forces", type=int, default=100)
    parser.add_argument("--model-forces", type=int, default=100, help="0 skips the embedded model")
    args = parser.parse_args()
    await run(ScriptedLLM(['{"action": "place", "data": {"cell": 5}}']), args.forces, "fake instant LLM")
    if args.model_forces:
        import platformdirs

        from companion.llm.transformers import TransformersLLM

        llm = TransformersLLM(cache_dir=Path(platformdirs.user_cache_dir("companion")))
        await llm.start()
        await run(llm, args.model_forces, "embedded default SmolLM2-135M (transformers, CPU)")
        await llm.close()


if __name__ == "__main__":
    asyncio.run(main())
