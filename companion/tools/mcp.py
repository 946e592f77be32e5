"""MCP servers as tool providers, through the official ``mcp`` SDK (2.x; pinned ``mcp>=2,<3``).

Each server runs under the supervisor: one session opens the client, lists the tools, registers them as ``server__tool``
and pings the server; on a crash or a hang it marks its tools unavailable and raises, and the supervisor starts
it again with backoff. Opening and closing the client in the same task avoids the SDK's cancel-scope pitfall.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from companion.runtime.events import AdapterStatus
from companion.tools.registry import Tool, ToolContext, ToolRegistry, ToolResult

if TYPE_CHECKING:
    from companion.config import MCPServerSection
    from companion.runtime.bus import EventBus

log = logging.getLogger(__name__)

__all__ = ["MCPServer", "MCPError"]

PING_EVERY = 5.0
STDIO_PING_EVERY = 2.0


class MCPError(Exception):
    """An MCP server cannot be used; the message names it and why."""


class MCPServer:
    max_delay = 30.0  # the supervisor's delays between restarts, at most

    def __init__(self, name: str, cfg: "MCPServerSection", registry: ToolRegistry, bus: "EventBus") -> None:
        self.name = name
        self.cfg = cfg
        self.registry = registry
        self.bus = bus
        self.tools: dict[str, Tool] = {}  # our name -> tool
        self._undo: dict[str, Any] = {}
        self._client: Any = None
        self._broken = asyncio.Event()
        self.connected = asyncio.Event()
        self.starts = 0

    def _target(self) -> Any:
        try:
            from mcp import StdioServerParameters
        except ImportError:
            raise MCPError("MCP needs the mcp package: pip install 'companion[tools]'") from None
        if self.cfg.url:
            return self.cfg.url
        # stdio children get only an allow-listed environment from the SDK; add PATH and the configured env
        env = {"PATH": os.environ.get("PATH", ""), **self.cfg.env}
        return StdioServerParameters(command=self.cfg.command, args=list(self.cfg.args), env=env)

    async def run(self, stop: asyncio.Event) -> None:
        """One session with the server until ``stop`` is set; raises when it crashes or hangs (the supervisor
        starts it again with backoff). Its tools stay registered, unavailable, until it is back."""
        try:
            await self._session(stop)
        except Exception as exc:
            self.bus.publish(AdapterStatus(f"mcp:{self.name}", "reconnecting", str(exc)[:200]))
            raise
        finally:
            self.connected.clear()
            self._client = None
            for tool in self.tools.values():
                tool.available = False
            if stop.is_set():  # shut down: the tools go
                for undo in self._undo.values():
                    undo()
                self._undo.clear()
                self.tools.clear()

    async def _session(self, stop: asyncio.Event) -> None:
        from mcp import Client

        self._broken.clear()
        async with Client(self._target(), read_timeout_seconds=self.cfg.timeout, cache=None) as client:
            self.starts += 1
            self._client = client
            listed = (await asyncio.wait_for(client.list_tools(), self.cfg.timeout)).tools
            self._register(listed)
            self.connected.set()
            self.bus.publish(AdapterStatus(f"mcp:{self.name}", "connected", f"{len(listed)} tools"))
            log.info("mcp %s: %d tools (%s)", self.name, len(listed), ", ".join(t.name for t in listed))
            while not stop.is_set() and not self._broken.is_set():
                # A local (stdio) server is cheap to ask; a crashed one is then noticed within 2 s.
                # Shutdown (stop) and a hung call (broken) end the wait at once.
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._broken.wait())]
                done, pending = await asyncio.wait(
                    waiters, timeout=PING_EVERY if self.cfg.url else STDIO_PING_EVERY, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
                if not done:
                    # health check (ping is gone from the 2026-07-28 protocol): fails when the server died or
                    # hangs, and picks up tools the server added or removed meanwhile
                    self._register((await asyncio.wait_for(client.list_tools(), self.cfg.timeout)).tools)
            if self._broken.is_set():
                raise MCPError("a tool call hung; restarting the server")

    def _register(self, listed: list[Any]) -> None:
        seen = set()
        for item in listed:
            ours = f"{self.name}__{item.name}"[:64]
            seen.add(ours)
            schema = getattr(item, "input_schema", None) or getattr(item, "inputSchema", None) or {"type": "object", "properties": {}}
            if ours in self.tools:
                tool = self.tools[ours]
                tool.description, tool.parameters, tool.available = item.description or "", schema, True
                continue
            tool = Tool(ours, item.description or "", self._handler(item.name), schema, self.cfg.permission, self.cfg.timeout, f"mcp:{self.name}")
            self._undo[ours] = self.registry.register(tool)
            self.tools[ours] = tool
        for gone in set(self.tools) - seen:
            self._undo.pop(gone)()
            del self.tools[gone]

    def _handler(self, remote: str) -> Any:
        async def call(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
            client = self._client
            if client is None:
                return ToolResult(f"error: MCP server {self.name} is restarting", is_error=True)
            try:
                result = await asyncio.wait_for(client.call_tool(remote, args), self.cfg.timeout - 0.5)
            except TimeoutError:
                self._broken.set()
                return ToolResult(f"error: MCP server {self.name} did not answer within {self.cfg.timeout:g} s", is_error=True)
            texts, images = [], []
            for block in getattr(result, "content", None) or []:
                kind = getattr(block, "type", "")
                if kind == "text":
                    texts.append(block.text)
                elif kind == "image":
                    images.append(f"data:{block.mime_type};base64,{block.data}")
            if not texts and getattr(result, "structured_content", None) is not None:
                import json

                texts.append(json.dumps(result.structured_content, ensure_ascii=False))
            return ToolResult("\n".join(texts) or "(no output)", images=images, is_error=bool(getattr(result, "is_error", False)))

        return call
