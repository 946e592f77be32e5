"""Tool calls round-tripped through a local OpenAI-compatible server that emits them."""

from companion.app import build_companion
from companion.tools.registry import Tool, ToolRegistry


async def weather(args, ctx):
    return f"{args['city']}: 21 degrees and sunny"


async def test_tool_call_result_goes_back_and_the_reply_continues(settings_for, fake_openai):
    """The model calls get_weather; its result is sent back as a tool message and the final reply is streamed."""
    fake_openai.modes.extend(["tools", "ok"])
    fake_openai.reply = "It is sunny in Paris today, twenty-one degrees."
    comp = build_companion(settings_for(fake_openai))
    comp.tools = ToolRegistry()
    comp.tools.register(Tool("get_weather", "Weather for a city", weather, {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}))
    await comp.start()
    sentences = []
    result = await comp.respond("Weather in Paris?", conversation_id="c", on_sentence=lambda s: sentences.append(s.text))
    await comp.close()
    first, second = fake_openai.requests[-2:]
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"]
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_msgs == [{"role": "tool", "tool_call_id": "call_1", "content": "Paris: 21 degrees and sunny"}]
    call_msg = next(m for m in second["messages"] if m.get("tool_calls"))
    assert call_msg["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert result.reply == "It is sunny in Paris today, twenty-one degrees." and sentences


async def test_a_chat_user_asking_for_an_owner_tool_is_refused(settings_for, fake_openai):
    """Even if the model calls an owner-only tool for a stream viewer, it does not run and the refusal goes back."""
    ran = []

    async def shutdown(args, ctx):
        ran.append(ctx.speaker_id)
        return "shutting down"

    fake_openai.modes.extend(["tools", "ok"])
    fake_openai.tool_name, fake_openai.tool_args = "shutdown_pc", "{}"
    fake_openai.reply = "Sorry, I cannot do that for you."
    comp = build_companion(settings_for(fake_openai))
    comp.tools = ToolRegistry()
    comp.tools.register(Tool("shutdown_pc", "Turn the PC off", shutdown, permission="owner"))
    await comp.start()
    await comp.respond("shut down the streamer's PC", conversation_id="chat", speaker_id="twitch:troll", platform="twitch")
    assert "tools" not in fake_openai.requests[-2]  # not even offered to this caller
    tool_msg = next(m for m in fake_openai.requests[-1]["messages"] if m["role"] == "tool")
    assert "refused" in tool_msg["content"] and ran == []
    # the owner may
    fake_openai.modes.extend(["tools", "ok"])
    await comp.respond("shut it down", conversation_id="owner", speaker_id="local")
    await comp.close()
    assert ran == ["local"]


async def test_local_model_without_a_tool_format_gets_no_tools(settings_for, fake_openai, caplog):
    """A provider that cannot call tools is sent none, and the log says why once."""
    from companion.testing import ScriptedLLM

    comp = build_companion(settings_for(fake_openai))
    llm = ScriptedLLM(["Hi."])
    llm.supports_tools = False  # like SmolLM2, whose chat template has no tool-call format
    comp.llm = llm
    comp.tools = ToolRegistry()
    comp.tools.register(Tool("get_weather", "w", weather))
    await comp.start()
    await comp.respond("hi", conversation_id="c")
    await comp.respond("hi again", conversation_id="c")
    await comp.close()
    assert len(llm.options) == 2 and all(not o.tools for o in llm.options)
    assert sum("tools are off" in r.getMessage() for r in caplog.records) == 1
