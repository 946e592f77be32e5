import pytest

from companion.llm.base import LLMError
from companion.llm.fallback import FallbackLLM
from companion.llm.openai import OpenAILLM


async def test_next_provider_answers_when_the_first_fails_before_a_token(fake_openai):
    """The user gets one reply from the backup when the primary is down."""
    down = OpenAILLM(base_url="http://127.0.0.1:9/v1", model="m", retries=0)
    up = OpenAILLM(base_url=fake_openai.base_url, model="test-model", retries=0)
    chain = FallbackLLM([down, up])
    text = "".join([c.text async for c in chain.stream([{"role": "user", "content": "hi"}])])
    await chain.close()
    assert text == fake_openai.reply
    assert len(fake_openai.requests) == 1


async def test_all_providers_failing_raises_the_last_error(fake_openai):
    """When every provider fails, the last error is raised, clearly."""
    fake_openai.modes.append("401")
    chain = FallbackLLM(
        [
            OpenAILLM(base_url="http://127.0.0.1:9/v1", model="m", retries=0),
            OpenAILLM(base_url=fake_openai.base_url, model="test-model", retries=0),
        ]
    )
    with pytest.raises(LLMError, match="401"):
        async for _ in chain.stream([{"role": "user", "content": "hi"}]):
            pass
    await chain.close()
