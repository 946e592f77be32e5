import asyncio
import time

import pytest

from companion.llm.base import GenerationOptions, LLMConnectionError, LLMHTTPError, LLMTimeoutError
from companion.llm.openai import OpenAILLM
from tests.fakes import FakeOpenAI


def make(server: FakeOpenAI, **kwargs) -> OpenAILLM:
    defaults = dict(base_url=server.base_url, model="test-model", api_key="sk-test", retries=2, backoff_base=0.01)
    defaults.update(kwargs)
    return OpenAILLM(**defaults)


async def collect(llm: OpenAILLM, messages=None, options=None):
    chunks = []
    try:
        async for chunk in llm.stream(messages or [{"role": "user", "content": "hi"}], options):
            chunks.append(chunk)
    finally:
        await llm.close()
    return chunks


async def test_streams_the_reply_token_by_token(fake_openai):
    """The reply arrives as several SSE chunks that join to the full text."""
    chunks = await collect(make(fake_openai))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 3
    assert "".join(texts) == fake_openai.reply
    body = fake_openai.requests[0]
    assert body["stream"] is True and body["model"] == "test-model"
    assert fake_openai.headers[0]["Authorization"] == "Bearer sk-test"


async def test_first_chunk_arrives_before_the_stream_ends(fake_openai):
    """Tokens are delivered as they are sent, not after the whole reply."""
    fake_openai.token_delay = 0.05
    llm = make(fake_openai)
    start = time.perf_counter()
    stamps = []
    async for chunk in llm.stream([{"role": "user", "content": "hi"}]):
        if chunk.text:
            stamps.append(time.perf_counter() - start)
    await llm.close()
    assert stamps[-1] - stamps[0] > 0.3  # spread over time, so truly streamed


async def test_images_are_sent_as_content_parts(fake_openai):
    """An image in the message reaches the server as an image_url content part."""
    url = "data:image/png;base64,iVBORw0KGgo="
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}]}]
    await collect(make(fake_openai), messages)
    parts = fake_openai.requests[0]["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": url}}


async def test_images_are_dropped_for_text_only_models(fake_openai):
    """With vision off, only the text of a message with images is sent."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]
    await collect(make(fake_openai, vision=False), messages)
    assert fake_openai.requests[0]["messages"][0]["content"] == "look"


async def test_tool_definitions_pass_through_and_tool_calls_come_back(fake_openai):
    """Tools are sent as given and streamed tool-call deltas are assembled into one call."""
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
    fake_openai.modes.append("tools")
    chunks = await collect(make(fake_openai), options=GenerationOptions(tools=tools))
    assert fake_openai.requests[0]["tools"] == tools
    calls = [call for c in chunks for call in c.tool_calls]
    assert len(calls) == 1
    assert (calls[0].id, calls[0].name, calls[0].arguments) == ("call_1", "get_weather", '{"city": "Paris"}')


async def test_retries_on_5xx_and_429_then_answers(fake_openai):
    """Transient 500 and 429 answers are retried and the user still gets the reply."""
    fake_openai.modes.extend(["500", "429"])
    chunks = await collect(make(fake_openai))
    assert "".join(c.text for c in chunks) == fake_openai.reply
    assert len(fake_openai.requests) == 3


async def test_gives_up_after_the_configured_retries(fake_openai):
    """A server that keeps failing ends in one clear error after retries."""
    fake_openai.modes.extend(["500"] * 5)
    with pytest.raises(LLMHTTPError, match="HTTP 500"):
        await collect(make(fake_openai, retries=1))
    assert len(fake_openai.requests) == 2


async def test_401_is_a_clean_error_without_retry(fake_openai):
    """A refused key is reported once, naming where the key comes from, and never echoed."""
    fake_openai.modes.append("401")
    with pytest.raises(LLMHTTPError) as err:
        await collect(make(fake_openai))
    assert err.value.status == 401
    assert "OPENAI_API_KEY" in str(err.value) and "sk-test" not in str(err.value)
    assert len(fake_openai.requests) == 1


async def test_server_dropping_mid_stream_is_a_connection_error(fake_openai):
    """A connection that dies mid-reply raises LLMConnectionError after the partial text."""
    fake_openai.modes.append("drop")
    got = []
    llm = make(fake_openai)
    with pytest.raises(LLMConnectionError):
        async for chunk in llm.stream([{"role": "user", "content": "hi"}]):
            got.append(chunk.text)
    await llm.close()
    assert "".join(got).startswith("[happy] Hello")
    assert len(fake_openai.requests) == 1  # no retry once text was delivered


async def test_server_that_never_answers_times_out(fake_openai):
    """A hung server ends in a timeout error after first_token_timeout, not a hang."""
    fake_openai.modes.append("hang")
    start = time.perf_counter()
    with pytest.raises(LLMTimeoutError, match="first_token_timeout"):
        await collect(make(fake_openai, first_token_timeout=0.5))
    assert time.perf_counter() - start < 3


async def test_unreachable_server_says_how_to_fix():
    """Connection refused is retried, then reported with a hint to start the server."""
    llm = OpenAILLM(base_url="http://127.0.0.1:9/v1", model="m", retries=1, backoff_base=0.01)
    with pytest.raises(LLMConnectionError, match="is the server running"):
        await collect(llm)


async def test_check_reports_missing_model(fake_openai):
    """doctor's check lists the models the server has when ours is missing."""
    llm = make(fake_openai, model="other")
    with pytest.raises(Exception, match="test-model"):
        await llm.check()
    await llm.close()
    good = make(fake_openai)
    assert "available" in await good.check()
    await good.close()


async def test_consumer_stopping_early_closes_the_request(fake_openai):
    """Breaking out of the stream mid-reply releases the connection promptly."""
    fake_openai.token_delay = 0.05
    llm = make(fake_openai)
    async for chunk in llm.stream([{"role": "user", "content": "hi"}]):
        if chunk.text:
            break
    await asyncio.wait_for(llm.close(), 1)
