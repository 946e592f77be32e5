"""Test helpers shipped with the package, for our tests and for plugin authors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from .llm.base import LLM, GenerationOptions, LLMChunk, LLMError, Message, ToolCall

Script = str | tuple[str, ToolCall]


class ScriptedLLM(LLM):
    """An LLM that streams a fixed reply token by token (optionally slowly, or failing).

    A reply given as ``(text, ToolCall(...))`` streams the text, then asks for
    that tool (a tool round); the next reply in the list answers after it.
    Records every prompt it was given in ``prompts``.
    """

    name = "scripted"

    def __init__(
        self,
        replies: Sequence[Script] = ("Hello! Nice to meet you.",),
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
        script = self.replies[(len(self.prompts) - 1) % len(self.replies)]
        reply, call = (script, None) if isinstance(script, str) else script
        for i, word in enumerate(reply.split(" ") if reply else []):
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            yield LLMChunk(text=word if i == 0 else " " + word)
        if call is not None:
            yield LLMChunk(tool_calls=(call,), finish_reason="tool_calls")
            return
        yield LLMChunk(finish_reason="stop")
