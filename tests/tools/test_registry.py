"""The tool registry: permissions, argument checks, failures and hangs become results, never crashes."""


import pytest

from companion.testing import hang
from companion.tools.registry import Tool, ToolContext, ToolRegistry


async def ok(args, ctx):
    return {"echo": args.get("x"), "by": ctx.speaker_id}


async def boom(args, ctx):
    raise RuntimeError("disk on fire")


async def slow(args, ctx):
    await hang()


def registry() -> ToolRegistry:
    reg = ToolRegistry()
    reg.register(Tool("echo", "echo x", ok, {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}))
    reg.register(Tool("shutdown_pc", "owner only", ok, permission="owner"))
    reg.register(Tool("boom", "fails", boom))
    reg.register(Tool("slow", "hangs", slow, timeout=0.2))
    return reg


async def test_chat_users_never_reach_owner_only_tools():
    """An 'anyone' caller is not offered owner tools, and a call to one is refused without running it."""
    reg = registry()
    chat = ToolContext("twitch:troll", "twitch", "c", "anyone")
    assert "shutdown_pc" not in {s["function"]["name"] for s in reg.specs_for(chat)}
    result = await reg.call("shutdown_pc", "{}", chat)
    assert result.is_error and "refused" in result.text
    owner = ToolContext("local", "cli", "c", "owner")
    assert not (await reg.call("shutdown_pc", "{}", owner)).is_error


@pytest.mark.parametrize(
    "name, args, expected",
    [("echo", "{not json", "not valid JSON"), ("echo", '{"x": "a"}', "bad arguments"), ("boom", "{}", "disk on fire"),
     ("slow", "{}", "longer than"), ("nope", "{}", "no tool named")],
)
async def test_failures_become_results(name, args, expected):
    """Bad JSON, schema violations, exceptions, timeouts and unknown tools come back as error text."""
    result = await registry().call(name, args, ToolContext("local", "cli", "c", "owner"))
    assert result.is_error and expected in result.text


async def test_register_twice_is_refused_and_undo_removes():
    """Names are unique; the undo function returned by register removes the tool."""
    reg = ToolRegistry()
    undo = reg.register(Tool("a", "", ok))
    with pytest.raises(ValueError, match="already exists"):
        reg.register(Tool("a", "", ok))
    undo()
    assert reg.names() == []
