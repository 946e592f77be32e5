"""Minecraft tests run against a real local server (flying-squid) and real mineflayer bots; they need Node.js."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from companion.minecraft.process import BOT_DIR

HERE = Path(__file__).resolve().parent


def need_node() -> None:
    if shutil.which("node") is None or not (BOT_DIR / "node_modules" / "flying-squid").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("Node.js and the bot's packages must be installed in CI (scripts/setup.sh dev runs npm ci)")
        pytest.skip("needs Node.js and `npm ci --prefix companion/minecraft/bot`")


class Player:
    """A scripted human player (tests/minecraft/player.js)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.heard: list[dict[str, Any]] = []
        self.joined = asyncio.Event()
        self.position: dict[str, float] | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("event") == "joined":
                self.joined.set()
            elif msg.get("event") == "chat":
                self.heard.append(msg)
            elif msg.get("event") == "position":
                self.position = msg["position"]

    async def send(self, **msg: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        await self.proc.stdin.drain()

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


@pytest.fixture
async def server():
    from companion.minecraft.demo import LocalServer

    need_node()
    srv = await LocalServer().start()
    yield srv
    await srv.stop()


@pytest.fixture
async def player_factory():
    players: list[Player] = []

    async def make(port: int, name: str = "Steve", version: str = "") -> Player:
        from companion.minecraft.demo import DEMO_VERSION

        proc = await asyncio.create_subprocess_exec(
            "node", str(HERE / "player.js"), str(port), name, version or DEMO_VERSION, cwd=str(BOT_DIR),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "NODE_PATH": str(BOT_DIR / "node_modules")},
        )
        player = Player(proc)
        players.append(player)
        await asyncio.wait_for(player.joined.wait(), 60)
        return player

    yield make
    for player in players:
        await player.close()
