"""LLM providers, chosen by name from config through the registry (``base.PROVIDERS``); heavy imports stay lazy.

A provider is one module here: a class on ``base.LLM`` plus a factory registered with ``@PROVIDERS.register(NAME)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from companion.llm.base import LLM, PROVIDERS, GenerationOptions, LLMChunk, LLMError, LLMPreempted, Priority, ToolCall
from companion.runtime.registry import RegistryError

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
    "create_llm",
    "create_provider",
]


def create_provider(settings: Settings, name: str) -> LLM:
    """Build one provider by name, from the registry its module joined (torch is imported only when a local model loads)."""
    llm = settings.llm
    common = dict(first_token_timeout=llm.first_token_timeout, idle_timeout=llm.idle_timeout, retries=llm.retries)
    try:
        factory = PROVIDERS.get(name)
    except RegistryError as exc:
        raise LLMError(str(exc)) from None
    return factory(settings, **common)


def create_llm(settings: Settings) -> LLMScheduler:
    """The configured provider (in a fallback chain when ``llm.fallback`` lists others), behind the one scheduler.

    The scheduler admits as many requests at once as the primary provider takes (its ``capacity``).
    """
    from companion.llm.scheduler import LLMScheduler

    primary = create_provider(settings, settings.llm.provider)
    if not settings.llm.fallback:
        return LLMScheduler(primary)
    from companion.llm.fallback import FallbackLLM

    chain = FallbackLLM([primary, *(create_provider(settings, n) for n in settings.llm.fallback)])
    return LLMScheduler(chain, int(getattr(primary, "capacity", 1)))
