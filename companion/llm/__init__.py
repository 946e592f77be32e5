"""LLM providers, chosen by name from config; heavy imports stay lazy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import GenerationOptions, LLM, LLMChunk, LLMError, ToolCall

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["LLM", "LLMChunk", "LLMError", "ToolCall", "GenerationOptions", "create_llm", "create_provider"]


def create_provider(settings: "Settings", name: str) -> LLM:
    """Build one provider by name (torch is imported only when the local model loads)."""
    llm = settings.llm
    common = dict(first_token_timeout=llm.first_token_timeout, idle_timeout=llm.idle_timeout, retries=llm.retries)
    if name == "openai":
        from .openai import OpenAILLM

        o = llm.openai
        return OpenAILLM(
            base_url=o.base_url,
            model=o.model,
            api_key=settings.openai_api_key(),
            api_key_env=o.api_key_env,
            vision=o.vision,
            connect_timeout=o.connect_timeout,
            **common,
        )
    if name == "transformers":
        from .transformers import TransformersLLM

        t = llm.transformers
        return TransformersLLM(model=t.model, device=t.device, dtype=t.dtype, cache_dir=settings.cache_path(), **common)
    raise LLMError(f"unknown LLM provider {name!r}; choose one of: openai, transformers")


def create_llm(settings: "Settings") -> LLM:
    """The configured provider, wrapped in a fallback chain when ``llm.fallback`` lists others."""
    primary = create_provider(settings, settings.llm.provider)
    if not settings.llm.fallback:
        return primary
    from .fallback import FallbackLLM

    return FallbackLLM([primary, *(create_provider(settings, n) for n in settings.llm.fallback)])
