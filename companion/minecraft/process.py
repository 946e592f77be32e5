"""The Node.js bot as a supervised child process, spoken to in JSON lines over stdio.

The bot reconnects to the Minecraft server by itself; when the process dies,
``run`` fails the skills that were waiting on it and raises, and the
supervisor starts it again (its one retry policy). Events become callbacks. Nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BOT_DIR", "SkillResult", "BotProcess", "MinecraftError", "node_executable", "check_installed"]

log = logging.getLogger(__name__)

BOT_DIR = Path(__file__).resolve().parent / "bot"


class MinecraftError(Exception):
    """The Minecraft side cannot run; the message says what to install or change."""


@dataclass
class SkillResult:
    name: str
    ok: bool
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    ms: float = 0.0

    @property
    def text(self) -> str:
        return str(self.result.get("text", "")) if self.ok else f"failed: {self.reason}"


def node_executable(configured: str = "node") -> str:
    found = shutil.which(configured)
    if found is None:
        raise MinecraftError(
            f"Node.js ({configured!r}) is not installed: Minecraft needs Node.js 18 or newer "
            "(Debian/Ubuntu: sudo apt install nodejs npm), then `scripts/setup.sh minecraft`"
        )
    return found


def check_installed(bot_dir: Path = BOT_DIR) -> None:
    if not (bot_dir / "node_modules" / "mineflayer").is_dir():
        raise MinecraftError(
            f"the Minecraft bot's packages are not installed in {bot_dir}: run `scripts/setup.sh minecraft` "
            f"(or `npm ci --prefix {bot_dir}`)"
        )


Events = Callable[[dict[str, Any]], None]


class BotProcess:
    """``run(stop)`` keeps the bot process alive; ``skill(name, args)`` asks it for one skill."""

    name = "minecraft"

    def __init__(self, env: dict[str, str], on_event: Events | None = None, *, node: str = "node", bot_dir: Path = BOT_DIR) -> None:
        self.env = env
        self.on_event = on_event or (lambda e: None)
        self.node = node
        self.bot_dir = bot_dir
        self.proc: asyncio.subprocess.Process | None = None
        self.joined = asyncio.Event()
        self.starts = 0
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[SkillResult]]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """One life of the bot process: returns when ``stop`` is set, raises when the process exits by itself.

        The supervisor starts it again (its one retry policy, reset once the bot has joined a world again).
        """
        node = node_executable(self.node)
        check_installed(self.bot_dir)
        self.proc = await asyncio.create_subprocess_exec(
            node, str(self.bot_dir / "bot.js"), cwd=str(self.bot_dir),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **self.env},
        )
        self.starts += 1
        reader = asyncio.create_task(self._read(self.proc))
        errors = asyncio.create_task(self._log_stderr(self.proc))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({reader, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                await self._terminate()
            code = await self.proc.wait()
        finally:
            for task in (reader, errors, stopping):
                task.cancel()
            self.joined.clear()
            self._fail_pending("the bot process stopped")
            if self.proc.returncode is None:  # cancelled at shutdown: never leave the child behind
                self.proc.kill()
        if not stop.is_set():
            raise ConnectionError(f"the bot process exited with code {code}; restarting it")

    async def _terminate(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the bot exits when its input closes
        try:
            await asyncio.wait_for(proc.wait(), 1.0)
        except TimeoutError:
            proc.kill()

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                log.debug("minecraft bot said: %s", line[:200])
                continue
            if not isinstance(msg, dict):
                continue
            if "id" in msg and msg.get("id") in self._pending:
                name, future = self._pending.pop(msg["id"])
                if not future.done():
                    found = msg.get("result")
                    result: dict[str, Any] = found if isinstance(found, dict) else {}
                    future.set_result(SkillResult(name, bool(msg.get("ok")), str(msg.get("reason") or ""), result, float(msg.get("ms") or 0)))
            elif "event" in msg:
                if msg["event"] == "joined":
                    self.joined.set()
                elif msg["event"] == "disconnected":
                    self.joined.clear()
                try:
                    self.on_event(msg)
                except Exception:  # noqa: BLE001 - a listener's bug must not stop the reader
                    log.exception("minecraft: event handler failed")

    async def _log_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            log.debug("minecraft bot: %s", line.decode(errors="replace").rstrip()[:300])

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for name, future in pending.values():
            if not future.done():
                future.set_result(SkillResult(name, False, reason))

    async def skill(self, name: str, args: dict[str, Any] | None = None, timeout: float = 60.0) -> SkillResult:
        """Run one skill; a failure (no server, no path, missing items, timeout) is a result with a reason."""
        proc = self.proc
        if proc is None or proc.returncode is not None or proc.stdin is None:
            return SkillResult(name, False, "the Minecraft bot is not running (it is restarting)")
        msg_id = next(self._ids)
        future: asyncio.Future[SkillResult] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = (name, future)
        payload = {"id": msg_id, "skill": name, "args": {**(args or {}), "timeout_ms": int(timeout * 1000)}}
        try:
            proc.stdin.write((json.dumps(payload) + "\n").encode())
            await proc.stdin.drain()
            return await asyncio.wait_for(asyncio.shield(future), timeout + 2)
        except (ConnectionError, RuntimeError):
            return SkillResult(name, False, "the Minecraft bot is not running (it is restarting)")
        except TimeoutError:
            return SkillResult(name, False, f"no answer within {timeout:g} s")
        finally:
            self._pending.pop(msg_id, None)
