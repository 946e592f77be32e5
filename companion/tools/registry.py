"""The tool registry: what the model is offered, who may call what, and running calls safely.

A tool call never takes the companion down: bad arguments, exceptions, hangs
and permission refusals all become a short text result the model reads and
answers from.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

log = logging.getLogger(__name__)

__all__ = ["Tool", "ToolContext", "ToolResult", "ToolRegistry", "PERMISSIONS"]

PERMISSIONS = ("anyone", "known", "owner")
_RANK = {p: i for i, p in enumerate(PERMISSIONS)}


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who asked: the speaker of the turn that led to the call."""

    speaker_id: str
    platform: str
    conversation_id: str
    level: str = "anyone"  # the caller's highest permission: anyone < known < owner


@dataclass(slots=True)
class ToolResult:
    """What goes back to the model; ``images`` (data URLs) are shown to a vision model after the result."""

    text: str
    images: list[str] = field(default_factory=list)
    is_error: bool = False


Handler = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


@dataclass(slots=True)
class Tool:
    name: str
    description: str
    handler: Handler
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    permission: str = "anyone"
    timeout: float = 20.0
    source: str = ""  # plugin or MCP server that provided it
    available: bool = True

    def __post_init__(self) -> None:
        if self.permission not in _RANK:
            raise ValueError(f"tool {self.name}: permission must be one of {', '.join(PERMISSIONS)}")
        if not self.name.replace("_", "").replace("-", "").isalnum() or len(self.name) > 64:
            raise ValueError(f"tool name {self.name!r}: use letters, digits, '_' or '-' (at most 64)")

    def spec(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Callable[[], None]:
        """Add a tool; returns a function that removes it again (plugins undo with it)."""
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} already exists (from {self._tools[tool.name].source or 'core'})")
        self._tools[tool.name] = tool
        def remove() -> None:
            if self._tools.get(tool.name) is tool:
                del self._tools[tool.name]

        return remove

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def allowed(self, tool: Tool, ctx: ToolContext) -> bool:
        return _RANK[ctx.level] >= _RANK[tool.permission]

    def specs_for(self, ctx: ToolContext) -> list[dict[str, Any]]:
        """The tools offered to the model for this caller: available ones they are allowed to use."""
        return [t.spec() for t in self._tools.values() if t.available and self.allowed(t, ctx)]

    async def call(self, name: str, arguments: str, ctx: ToolContext) -> ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult(f"error: there is no tool named {name!r}", is_error=True)
        if not self.allowed(tool, ctx):
            log.warning("tools: %s (%s) may not use %s (needs %s)", ctx.speaker_id, ctx.level, name, tool.permission)
            return ToolResult(f"refused: {name} may only be used by the {tool.permission}; tell the person you cannot do that for them", is_error=True)
        if not tool.available:
            return ToolResult(f"error: {name} is unavailable right now (its server is restarting)", is_error=True)
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            return ToolResult(f"error: the arguments for {name} are not valid JSON", is_error=True)
        if not isinstance(args, dict):
            return ToolResult(f"error: the arguments for {name} must be a JSON object", is_error=True)
        problems = [e.message for e in Draft202012Validator(tool.parameters).iter_errors(args)]
        if problems:
            return ToolResult(f"error: bad arguments for {name}: {'; '.join(problems[:3])}", is_error=True)
        try:
            async with asyncio.timeout(tool.timeout):
                out = await tool.handler(args, ctx)
        except TimeoutError:
            log.warning("tools: %s timed out after %.0f s", name, tool.timeout)
            return ToolResult(f"error: {name} took longer than {tool.timeout:g} s and was stopped", is_error=True)
        except Exception as exc:  # noqa: BLE001 - a plugin bug becomes a result, never a crash
            log.exception("tools: %s failed", name)
            return ToolResult(f"error: {name} failed: {type(exc).__name__}: {exc}", is_error=True)
        if isinstance(out, ToolResult):
            return out
        return ToolResult(out if isinstance(out, str) else json.dumps(out, ensure_ascii=False, default=str))
