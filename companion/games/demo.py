"""A tiny tic-tac-toe game that speaks the Neuro API as a client.

It lets a user watch the companion co-play without installing a game
(``companion game demo``) and gives tests and benchmarks a real game client.
The game re-registers ``place`` before every move with the free cells as an
enum, the dynamic-schema pattern the Neuro SDK best practices recommend.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

GAME = "Tic-tac-toe (companion demo)"
LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


@dataclass
class Board:
    cells: list[str] = field(default_factory=lambda: [" "] * 9)

    def free(self) -> list[int]:
        return [i + 1 for i, c in enumerate(self.cells) if c == " "]

    def winner(self) -> str | None:
        for a, b, c in LINES:
            if self.cells[a] != " " and self.cells[a] == self.cells[b] == self.cells[c]:
                return self.cells[a]
        return "draw" if not self.free() else None

    def render(self) -> str:
        rows = []
        for r in range(3):
            rows.append(" | ".join(self.cells[r * 3 + i] if self.cells[r * 3 + i] != " " else str(r * 3 + i + 1) for i in range(3)))
        return "\n---------\n".join(rows)


@dataclass
class DemoStats:
    rounds: int = 0
    moves: int = 0
    rejected: int = 0
    results: list[str] = field(default_factory=list)


async def play(
    url: str,
    *,
    rounds: int = 1,
    rng: random.Random | None = None,
    show: Callable[[str], None] = print,
    move_timeout: float = 120.0,
) -> DemoStats:
    """Connect to a Neuro API server at ``url`` and play ``rounds`` games as O against it (X)."""
    rng = rng or random.Random()
    stats = DemoStats()
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, max_msg_size=1 << 20) as ws:

            async def send(command: str, data: dict | None = None) -> None:
                message: dict = {"command": command, "game": GAME}
                if data is not None:
                    message["data"] = data
                await ws.send_str(json.dumps(message))

            async def next_action() -> dict:
                while True:
                    msg = await ws.receive(timeout=move_timeout)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        raise ConnectionError("the companion closed the game connection")
                    obj = json.loads(msg.data)
                    if obj.get("command") == "action":
                        return obj["data"]

            await send("startup")
            await send("context", {"message": "Tic-tac-toe: you are X and move first. Cells are numbered 1-9, left to right, top to bottom.", "silent": True})
            for _ in range(rounds):
                board = Board()
                turn = "X"
                while board.winner() is None:
                    if turn == "X":
                        schema = {"type": "object", "properties": {"cell": {"type": "integer", "enum": board.free()}}, "required": ["cell"]}
                        await send("actions/unregister", {"action_names": ["place"]})
                        await send("actions/register", {"actions": [{"name": "place", "description": "Put your X on a free cell", "schema": schema}]})
                        await send("actions/force", {
                            "state": board.render(), "query": "Your turn: choose a free cell for your X.", "action_names": ["place"], "priority": "medium",
                        })
                        action = await next_action()
                        cell = _cell(action.get("data"))
                        if cell not in board.free():
                            stats.rejected += 1
                            message = f"Cell {cell} is not free; free cells: {board.free()}"
                            await send("action/result", {"id": action["id"], "success": False, "message": message})
                            continue
                        await send("action/result", {"id": action["id"], "success": True, "message": f"X placed on cell {cell}"})
                    else:
                        cell = rng.choice(board.free())
                        await send("context", {"message": f"Your opponent put an O on cell {cell}.", "silent": False})
                    board.cells[cell - 1] = turn
                    stats.moves += 1
                    show(f"{turn} -> {cell}\n{board.render()}\n")
                    turn = "O" if turn == "X" else "X"
                result = board.winner() or "draw"
                stats.rounds += 1
                stats.results.append(result)
                outcome = "It's a draw." if result == "draw" else ("You won!" if result == "X" else "Your opponent won.")
                await send("context", {"message": f"Game over. {outcome}", "silent": False})
                show(f"game over: {result if result == 'draw' else result + ' wins'}\n")
    return stats


def _cell(data: object) -> int | None:
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError:
            return None
    if isinstance(data, dict) and isinstance(data.get("cell"), int):
        return data["cell"]
    return None
