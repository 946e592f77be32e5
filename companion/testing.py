"""Test helpers shipped with the package, for our tests and for plugin authors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from .llm.base import LLM, GenerationOptions, LLMChunk, LLMError, Message


class ScriptedLLM(LLM):
    """An LLM that streams a fixed reply token by token (optionally slowly, or failing).

    Records every prompt it was given in ``prompts``.
    """

    name = "scripted"

    def __init__(
        self,
        replies: Sequence[str] = ("Hello! Nice to meet you.",),
        *,
        token_delay: float = 0.0,
        fail_with: LLMError | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.replies = list(replies)
        self.token_delay = token_delay
        self.fail_with = fail_with
        self.prompts: list[list[Message]] = []
        self.options: list[GenerationOptions] = []

    async def _stream(self, messages: list[Message], options: GenerationOptions) -> AsyncIterator[LLMChunk]:
        self.prompts.append(messages)
        self.options.append(options)
        if self.fail_with is not None:
            raise self.fail_with
        reply = self.replies[(len(self.prompts) - 1) % len(self.replies)]
        for i, word in enumerate(reply.split(" ")):
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            yield LLMChunk(text=word if i == 0 else " " + word)
        yield LLMChunk(finish_reason="stop")
