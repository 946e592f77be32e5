"""A tiny MCP server (stdio) for the tests, written with the official SDK."""

import asyncio
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("testtools")
marker = Path(sys.argv[1]) if len(sys.argv) > 1 else None


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def crash() -> str:
    """Kill the server process (to test restarts)."""
    os._exit(3)


@server.tool()
async def hang() -> str:
    """Never answer (to test hang detection)."""
    await asyncio.Event().wait()
    return "unreachable"


if __name__ == "__main__":
    if marker is not None:
        with marker.open("a") as fh:
            fh.write("start\n")
    server.run()
