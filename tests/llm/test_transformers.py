"""The real local provider with the packaged SmolLM2-135M (converted once, cached)."""

import asyncio
import time
from pathlib import Path

import platformdirs
import pytest

from companion.llm.base import GenerationOptions
from companion.llm.transformers import TransformersLLM

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm() -> TransformersLLM:
    cache = Path(platformdirs.user_cache_dir("companion"))
    llm = TransformersLLM(cache_dir=cache, device="cpu")
    asyncio.run(llm.start())
    return llm


MESSAGES = [
    {"role": "system", "content": "You are Mika, a cheerful companion."},
    {"role": "user", "content": "Hello! What is your favourite colour?"},
]


async def test_answers_a_chat_turn_with_streamed_text(smollm):
    """The packaged model streams a non-empty reply in several pieces."""
    pieces = [c.text async for c in smollm.stream(MESSAGES, GenerationOptions(max_tokens=24, temperature=0))]
    texts = [p for p in pieces if p]
    assert len(texts) >= 3
    reply = "".join(texts)
    assert len(reply.split()) >= 3
    assert "<|im_start|>" not in reply and "<|im_end|>" not in reply


async def test_can_be_cancelled_mid_stream_quickly(smollm):
    """Stopping after the first token frees the model within a fraction of a second."""
    options = GenerationOptions(max_tokens=200, temperature=0)
    stream = smollm.stream(MESSAGES, options)
    async for chunk in stream:
        if chunk.text:
            break
    start = time.perf_counter()
    await stream.aclose()
    # the next turn gets the model at once: the old generation really stopped
    first = None
    async for chunk in smollm.stream(MESSAGES, GenerationOptions(max_tokens=4, temperature=0)):
        if chunk.text and first is None:
            first = time.perf_counter() - start
    assert first is not None and first < 3.0


async def test_event_loop_stays_responsive_while_generating(smollm):
    """Generation runs off the loop: a ticker keeps ticking while tokens are produced."""
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)  # real time on purpose: the loop's own heartbeat is what this test measures
            ticks += 1

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    async for _ in smollm.stream(MESSAGES, GenerationOptions(max_tokens=24, temperature=0)):
        pass
    elapsed = time.perf_counter() - start
    task.cancel()
    assert ticks >= elapsed / 0.01 * 0.3


async def test_images_are_ignored_with_a_warning_for_text_models(smollm, caplog):
    """A text-only model still answers when a message carries an image."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hi!"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]
    reply = "".join([c.text async for c in smollm.stream(messages, GenerationOptions(max_tokens=8, temperature=0))])
    assert reply.strip()


async def test_json_schema_response_format_constrains_the_output(smollm):
    """With a json_schema response_format, the local model's text is JSON that fits the schema."""
    import json

    from companion.games.schema import validation_error

    schema = {
        "type": "object",
        "properties": {"mood": {"type": "string", "enum": ["happy", "sad"]}, "level": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["mood", "level"],
    }
    options = GenerationOptions(
        max_tokens=40, temperature=0.7, response_format={"type": "json_schema", "json_schema": {"name": "m", "schema": schema}}
    )
    for _ in range(2):
        text = "".join([c.text async for c in smollm.stream(MESSAGES, options)])
        assert validation_error(json.loads(text), schema) is None


def test_hermes_tool_calls_are_split_from_the_streamed_text():
    """<tool_call>{json}</tool_call> blocks become tool calls, even when split across tokens; other text streams."""
    from companion.llm.transformers import ToolCallSplitter

    splitter = ToolCallSplitter()
    shown = "".join(
        splitter.feed(piece)
        for piece in ["Let me check. <tool", "_call>{\"name\": \"get_weather\", ", "\"arguments\": {\"city\": \"Oslo\"}}</tool_", "call>"]
    )
    tail, calls = splitter.finish()
    assert (shown + tail).strip() == "Let me check."
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", '{"city": "Oslo"}')]
