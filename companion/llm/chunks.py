"""OpenAI-style chat completion chunks -> LLMChunk (pure), shared by the server and in-process providers.

An OpenAI-compatible server sends these over SSE; llama.cpp's embedded server
hands the very same dicts to a callback. One reader keeps tool-call deltas and
finish reasons handled alike for both.
"""

from __future__ import annotations

import logging
from typing import Any

from companion.llm.base import LLMChunk, Message, ToolCall
from companion.text.chunking import clean_input

__all__ = ["ToolCallDeltas", "read_choice", "tool_calls", "text_only_messages", "clean_messages"]

ToolCallDeltas = dict[int, dict[str, str]]  # index -> id / name / arguments collected so far


def read_choice(choice: dict[str, Any], tools: ToolCallDeltas) -> tuple[LLMChunk | None, bool]:
    """One streamed choice: the text chunk to pass on (or None) and whether it finished the reply.

    Tool-call deltas are collected into ``tools``; ``tool_calls(tools)`` turns
    them into calls once the stream has ended.
    """
    delta = choice.get("delta") or {}
    for call in delta.get("tool_calls") or []:
        slot = tools.setdefault(int(call.get("index", len(tools))), {})
        if call.get("id"):
            slot["id"] = call["id"]
        fn = call.get("function") or {}
        if fn.get("name"):
            slot["name"] = slot.get("name", "") + fn["name"]
        if fn.get("arguments"):
            slot["arguments"] = slot.get("arguments", "") + fn["arguments"]
    finish = choice.get("finish_reason")
    text = delta.get("content") or ""
    if text or (finish and not tools):
        return LLMChunk(text=text, finish_reason=finish), bool(finish)
    return None, bool(finish)


def tool_calls(tools: ToolCallDeltas) -> tuple[ToolCall, ...]:
    return tuple(
        ToolCall(t.get("id", f"call_{i}"), t.get("name", ""), t.get("arguments", "")) for i, t in sorted(tools.items())
    )


def text_only_messages(
    messages: list[Message], log: logging.Logger | None = None, why: str = ""
) -> tuple[list[Message], bool]:
    """Messages with image parts dropped (for text-only models), and whether any was; warns through ``log`` if given."""
    out: list[Message] = []
    dropped = False
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            texts = [p.get("text", "") for p in content if p.get("type") == "text"]
            dropped = dropped or len(texts) != len(content)
            m = {**m, "content": "\n".join(texts)}
        out.append(m)
    if dropped and log is not None:
        log.warning("images dropped: %s", why or "this model reads text only")
    return out, dropped


def clean_messages(messages: list[Message]) -> list[Message]:
    """``messages`` with every text cleaned by ``clean_input``: one gate for all outside text before any model."""
    out: list[Message] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            cleaned = clean_input(content)
            message = message if cleaned == content else {**message, "content": cleaned}
        elif isinstance(content, list):
            parts = [
                {**p, "text": clean_input(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str) else p
                for p in content
            ]
            message = {**message, "content": parts}
        out.append(message)
    return out
