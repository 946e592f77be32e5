"""LLM providers, chosen by name from config; heavy imports stay lazy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from companion.llm.base import LLM, GenerationOptions, LLMChunk, LLMError, LLMPreempted, Priority, ToolCall

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.llm.scheduler import LLMScheduler

__all__ = [
    "LLM",
    "LLMChunk",
    "LLMError",
    "LLMPreempted",
    "Priority",
    "ToolCall",
    "GenerationOptions",
    "capacity_of",
    "create_llm",
    "create_provider",
]


def create_provider(settings: "Settings", name: str) -> LLM:
    """Build one provider by name (torch is imported only when the local model loads)."""
    llm = settings.llm
    common = dict(first_token_timeout=llm.first_token_timeout, idle_timeout=llm.idle_timeout, retries=llm.retries)
    if name == "openai":
        from companion.llm.openai import OpenAILLM

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
    if name == "llamacpp":
        from companion.llm.llamacpp import LlamaCppLLM

        c = llm.llamacpp
        return LlamaCppLLM(
            model=c.model,
            n_ctx=c.n_ctx,
            threads=c.threads,
            parallel=c.parallel,
            gpu_layers=c.gpu_layers,
            chat_template=c.chat_template,
            stop=c.stop,
            mmproj=c.mmproj,
            **common,
        )
    if name == "transformers":
        from companion.llm.transformers import TransformersLLM

        t = llm.transformers
        return TransformersLLM(model=t.model, device=t.device, dtype=t.dtype, cache_dir=settings.cache_path(), **common)
    raise LLMError(f"unknown LLM provider {name!r}; choose one of: llamacpp, transformers, openai")


def capacity_of(settings: "Settings", name: str) -> int:
    """Requests one provider takes at once: llama.cpp's slots, one local transformers model, the server limit."""
    llm = settings.llm
    return {"llamacpp": llm.llamacpp.parallel, "openai": llm.openai.concurrency}.get(name, 1)


def create_llm(settings: "Settings") -> "LLMScheduler":
    """The configured provider (in a fallback chain when ``llm.fallback`` lists others), behind the one scheduler."""
    from companion.llm.scheduler import LLMScheduler

    primary = create_provider(settings, settings.llm.provider)
    capacity = capacity_of(settings, settings.llm.provider)
    if not settings.llm.fallback:
        return LLMScheduler(primary, capacity)
    from companion.llm.fallback import FallbackLLM

    chain = FallbackLLM([primary, *(create_provider(settings, n) for n in settings.llm.fallback)])
    return LLMScheduler(chain, capacity)
