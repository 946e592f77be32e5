"""A chain of providers: if one fails before its first token, the next answers.

The user sees one reply: once a provider has produced text, the chain is
committed to it (switching mid-reply would mix two voices).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from companion.llm.base import LLM, GenerationOptions, LLMChunk, LLMError, Message, aclose

log = logging.getLogger(__name__)


class FallbackLLM(LLM):
    name = "fallback"

    def __init__(self, providers: Sequence[LLM]) -> None:
        if not providers:
            raise ValueError("FallbackLLM needs at least one provider")
        # Each member applies its own timeouts and retries; the chain adds none.
        super().__init__(first_token_timeout=float("inf"), idle_timeout=float("inf"), retries=0)
        self.providers = list(providers)
        self.name = "+".join(p.name for p in self.providers)

    async def start(self) -> None:
        """Start every member; a member that cannot start is skipped at answer time, not fatal."""
        errors = []
        for provider in self.providers:
            try:
                await provider.start()
            except LLMError as exc:
                errors.append(exc)
                log.warning("%s could not start: %s", provider.name, exc)
        if len(errors) == len(self.providers):
            raise errors[0]

    async def close(self) -> None:
        for provider in self.providers:
            await provider.close()

    @property
    def supports_tools(self) -> bool:
        return bool(getattr(self.providers[0], "supports_tools", True))

    async def warm(self, messages: list[Message]) -> None:
        await self.providers[0].warm(messages)

    async def count_tokens(self, texts: list[str]) -> list[int]:
        return await self.providers[0].count_tokens(texts)

    async def check(self) -> str:
        return "; ".join([f"{p.name}: {await p.check()}" for p in self.providers])

    async def _stream(self, messages: list[Message], options: GenerationOptions) -> AsyncIterator[LLMChunk]:
        last: LLMError | None = None
        for provider in self.providers:
            stream = provider.stream(messages, options)
            try:
                try:
                    first = await stream.__anext__()
                except StopAsyncIteration:
                    return
                except LLMError as exc:
                    last = exc
                    log.warning("%s failed before answering (%s); trying the next provider", provider.name, exc)
                    continue
                yield first
                async for chunk in stream:
                    yield chunk
                return
            finally:
                await aclose(stream)
        assert last is not None
        raise last
