"""Neuro API decision latency: N forces from a scripted game client over a real websocket.

First with a fake instant LLM (the server's own overhead: decision latency at
the game minus the LLM decision; target < 5 ms per force), then the whole
companion on its defaults for each local provider: commentary at the default
chattiness and memory on, with the game sending non-silent context in the
same instant as each force. Prints decision latency at the game (median,
p90), fallbacks, schema-invalid actions and how much commentary was
preempted by forces. Targets (llama.cpp): p50 <= 1.5 s, p90 <= 3 s, 0 fallbacks.

    .venv/bin/python bench/games.py --forces 100 --model-forces 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time

import aiohttp

from companion.adapters.neuro_api import GameActionSent, NeuroGameServer
from companion.config import GamesSection
from companion.games.decider import ActionDecider
from companion.llm.base import LLM
from companion.runtime.bus import EventBus
from companion.testing import ScriptedLLM

SCHEMA = {
    "type": "object",
    "properties": {"cell": {"type": "integer", "minimum": 1, "maximum": 9}, "taunt": {"type": "string"}},
    "required": ["cell"],
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def play(port: int, forces: int, *, with_context: bool = False, pause: float = 0.0) -> tuple[list[float], list[dict]]:
    """A scripted game client: N forces, each answered with a success; returns round trips (ms) and the actions.

    ``with_context``: a non-silent context message (an opponent's move) goes out in the same instant as each force.
    """
    rng = random.Random(1)
    round_trips: list[float] = []
    actions: list[dict] = []
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{port}/") as ws:
            async def send(command: str, data: dict | None = None) -> None:
                await ws.send_str(json.dumps({"command": command, "game": "bench", **({"data": data} if data else {})}))

            await send("startup")
            await send("actions/register", {"actions": [
                {"name": "place", "description": "Place a mark on a free cell", "schema": SCHEMA},
                {"name": "pass", "description": "Skip the turn"},
            ]})
            for i in range(forces):
                if with_context:
                    await send("context", {"message": f"The opponent placed O on cell {rng.randint(1, 9)}.", "silent": False})
                start = time.perf_counter()
                await send("actions/force", {"query": f"Move {i}: pick a cell", "state": "board: mostly empty",
                                             "action_names": ["place", "pass"]})
                while True:
                    msg = json.loads((await ws.receive(timeout=120)).data)
                    if msg["command"] == "action":
                        break
                round_trips.append((time.perf_counter() - start) * 1000)
                actions.append(msg["data"])
                await send("action/result", {"id": msg["data"]["id"], "success": True})
                if pause:
                    await asyncio.sleep(pause)  # the game animates the move
    return round_trips, actions


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
    try:
        round_trips, _ = await play(server.port, forces)
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


async def run_companion(provider: str, forces: int, tmp: str) -> None:
    """The whole product on its defaults (commentary at the default chattiness, memory on): the game sends
    non-silent context in the same instant as each force, as the demo's opponent moves do."""
    from companion.app import build_companion, build_game_server
    from companion.config import Settings
    from companion.games.schema import validation_error
    from companion.llm.base import Priority
    from companion.runtime.events import TurnEnded

    settings = Settings.model_validate(
        {"companion": {"data_dir": f"{tmp}/{provider}"}, "llm": {"provider": provider}, "games": {"enabled": True, "port": 0}}
    )
    companion = build_companion(settings)
    await companion.start()
    comments: list[TurnEnded] = []
    companion.bus.subscribe(TurnEnded, lambda e: comments.append(e) if e.conversation_id.startswith("game:") else None)
    sent: list[GameActionSent] = []
    companion.bus.subscribe(GameActionSent, sent.append)
    server = build_game_server(companion, settings, port=0)
    await server.start()
    try:
        round_trips, actions = await play(server.port, forces, with_context=True, pause=0.3)
    finally:
        await server.stop()
        await companion.close(memory_grace=0)
    invalid = sum(
        validation_error(json.loads(a.get("data") or "null"), SCHEMA if a["name"] == "place" else None) is not None
        for a in actions
    )
    fallbacks = sum(1 for e in sent if e.fallback)
    cut = sum(1 for e in comments if e.interrupted)
    print(f"\nembedded default through {provider}, commentary on (chattiness {settings.games.chattiness}), memory on: {forces} forces")
    print(f"  decision latency at the game: median {statistics.median(round_trips):9.2f} ms   p90 {pct(round_trips, 0.9):9.2f} ms")
    print(f"  fallbacks used: {fallbacks}   schema-invalid actions: {invalid}   "
          f"commentary replies: {len(comments)} ({cut} preempted by a force)   "
          f"commentary preemptions in the scheduler: {companion.llm.stats.preempted[Priority.COMMENTARY]}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forces", type=int, default=100)
    parser.add_argument("--model-forces", type=int, default=50, help="0 skips the embedded model")
    parser.add_argument("--providers", default="llamacpp,transformers")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING, format="  log: %(name)s: %(message)s")
    logging.getLogger("companion.games.decider").setLevel(logging.INFO)  # says why a fallback was used
    await run(ScriptedLLM(['{"action": "place", "data": {"cell": 5}}']), args.forces, "fake instant LLM (server overhead)")
    if args.model_forces:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for provider in args.providers.split(","):
                await run_companion(provider, args.model_forces, tmp)


if __name__ == "__main__":
    asyncio.run(main())
