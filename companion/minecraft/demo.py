"""`companion minecraft demo`: a local test server, the bot joining it, a short scripted goal, what happened.

The server is flying-squid (a Minecraft server in Node.js, MIT) in offline mode
with a small flat world, so anyone can watch the bot play without owning
Minecraft. The tests use the same server.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from companion.minecraft.process import BOT_DIR, BotProcess, MinecraftError, check_installed, node_executable
from companion.minecraft.skills import SKILL_TIMEOUTS, Step

__all__ = ["LocalServer", "run_demo", "DEMO_VERSION"]

DEMO_VERSION = "1.16.5"  # on flying-squid 1.12 digging drops items the bot picks up (not on 1.19.4)
PLAYERS_VERSION = "1.19.4"  # ...and other players are visible to the bot only on this version (not 1.8-1.18, 1.20+)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """flying-squid on a loopback port; ``stop`` and ``start`` again to test reconnection."""

    def __init__(self, port: int | None = None, version: str = DEMO_VERSION, node: str = "node", bot_dir: Path = BOT_DIR) -> None:
        self.port = port or free_port()
        self.version = version
        self.node = node
        self.bot_dir = bot_dir
        self.proc: asyncio.subprocess.Process | None = None
        self._drainer: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 60.0) -> "LocalServer":
        node = node_executable(self.node)
        if not (self.bot_dir / "node_modules" / "flying-squid").is_dir():
            raise MinecraftError(f"the local test server (flying-squid) is not installed in {self.bot_dir}: run `scripts/setup.sh minecraft`")
        self.proc = await asyncio.create_subprocess_exec(
            node, str(self.bot_dir / "server.js"), str(self.port), self.version, cwd=str(self.bot_dir),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(self.proc.stdout.readline(), max(0.1, deadline - time.monotonic()))
            if not line:
                raise MinecraftError("the local Minecraft server stopped while starting")
            if b'"listening"' in line:
                self._drainer = asyncio.get_running_loop().create_task(self._drain())  # kept: the pipe must not fill
                return self
        raise MinecraftError(f"the local Minecraft server did not start within {timeout:g} s")

    async def _drain(self) -> None:
        proc = self.proc
        while proc is not None and proc.stdout is not None and await proc.stdout.readline():
            pass

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if self._drainer is not None:
            self._drainer.cancel()
        if proc is None or proc.returncode is not None:
            return
        proc.kill()
        await proc.wait()


DEMO_STEPS = [
    Step("look"),
    Step("say", {"text": "Hi! I'm Mika. Let me show you around."}),
    Step("collect", {"block": "grass_block", "count": 2}),
    Step("place", {"block": "dirt"}),
    Step("craft", {"item": "crafting_table"}),  # fails: no planks (the reason is shown)
    Step("goto", {"x": 10_000, "y": 4, "z": 0}),  # fails: outside the allowed radius
    Step("say", {"text": "That's all for the demo!"}),
]


async def run_demo(node: str = "node", bot_dir: Path = BOT_DIR) -> dict[str, Any]:
    check_installed(bot_dir)
    server = await LocalServer(node=node, bot_dir=bot_dir).start()
    stop = asyncio.Event()
    env = {"MC_HOST": "127.0.0.1", "MC_PORT": str(server.port), "MC_USERNAME": "Mika", "MC_VERSION": server.version, "MC_RADIUS": "64"}
    bot = BotProcess(env, node=node, bot_dir=bot_dir)
    task = asyncio.create_task(bot.run(stop))
    out: dict[str, Any] = {"joined": False, "server": f"127.0.0.1:{server.port} (Minecraft {server.version}, flying-squid)", "skills": []}
    try:
        try:
            await asyncio.wait_for(bot.joined.wait(), 60)
            out["joined"] = True
        except TimeoutError:
            return out
        for step in DEMO_STEPS:
            result = await bot.skill(step.skill, {**step.args, "owner": True}, SKILL_TIMEOUTS[step.skill])
            out["skills"].append({"name": step.skill, "args": step.args, "ok": result.ok, "reason": result.reason,
                                  "ms": round(result.ms, 1), "text": result.text})
        return out
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop()


def print_demo(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(out))
        return
    print(f"server: {out['server']}; joined: {'yes' if out['joined'] else 'NO'}")
    for s in out["skills"]:
        print(f"  {s['name']:<8} {'ok  ' if s['ok'] else 'FAIL'} {s['ms']:7.0f} ms  {s['text'].replace(chr(10), '; ')}")


if __name__ == "__main__":  # pragma: no cover
    print_demo(asyncio.run(run_demo()), as_json=bool(os.environ.get("JSON")))
