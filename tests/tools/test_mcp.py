"""MCP servers over stdio through the official SDK: tools merged with a prefix, crashes and hangs restarted."""

import asyncio
import sys
from pathlib import Path

import pytest

from companion.config import MCPServerSection
from companion.runtime.bus import EventBus
from companion.runtime.supervisor import FunctionAdapter, HealthBoard, Supervisor
from companion.testing import eventually
from companion.tools.mcp import MCPServer
from companion.tools.registry import ToolContext, ToolRegistry

pytestmark = pytest.mark.slow
SERVER = Path(__file__).with_name("mcp_server.py")
CTX = ToolContext("local", "cli", "c", "owner")


async def started(tmp_path, timeout: float = 30.0):
    registry, bus = ToolRegistry(), EventBus()
    cfg = MCPServerSection(command=sys.executable, args=[str(SERVER), str(tmp_path / "starts")], timeout=3.0)
    server = MCPServer("calc", cfg, registry, bus)
    supervisor = Supervisor(HealthBoard().attach(bus))  # as `companion run` runs it: restarts are the supervisor's
    supervisor.start(FunctionAdapter("mcp:calc", server.run, max_delay=server.max_delay))
    task = asyncio.create_task(supervisor.done())
    await asyncio.wait_for(server.connected.wait(), timeout)
    return server, registry, supervisor.stop_event, task


async def wait_for(predicate, timeout: float = 30.0):
    """Until the server process did what ``predicate`` checks (it runs in its own time)."""
    await eventually(predicate, timeout=timeout, what="the MCP server's change")


async def test_tools_are_listed_with_the_server_prefix_and_called(tmp_path):
    """The server's tools appear as calc__add etc. and a call returns the server's answer."""
    server, registry, stop, task = await started(tmp_path)
    assert {"calc__add", "calc__crash", "calc__hang"} <= set(registry.names())
    result = await registry.call("calc__add", '{"a": 2, "b": 40}', CTX)
    assert not result.is_error and "42" in result.text
    stop.set()
    await task
    assert registry.names() == []


async def test_a_crashed_server_is_restarted_and_its_tools_come_back(tmp_path):
    """A server that dies: its tools are unavailable meanwhile, then it is restarted with backoff."""
    server, registry, stop, task = await started(tmp_path)
    result = await registry.call("calc__crash", "{}", CTX)
    assert result.is_error
    await wait_for(lambda: not server.connected.is_set())
    assert not registry.get("calc__add").available
    await wait_for(lambda: server.connected.is_set())
    assert registry.get("calc__add").available
    assert "42" in (await registry.call("calc__add", '{"a": 40, "b": 2}', CTX)).text
    assert (tmp_path / "starts").read_text().count("start") >= 2
    stop.set()
    await task


async def test_a_hung_call_times_out_and_the_server_is_restarted(tmp_path):
    """A tool call that never answers returns an error after the timeout, and the server is restarted."""
    server, registry, stop, task = await started(tmp_path)
    result = await registry.call("calc__hang", "{}", CTX)
    assert result.is_error and ("did not answer" in result.text or "longer than" in result.text)
    await wait_for(lambda: server.starts >= 2 and server.connected.is_set())
    assert "5" in (await registry.call("calc__add", '{"a": 2, "b": 3}', CTX)).text
    stop.set()
    await task
