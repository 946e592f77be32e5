"""The LLM base class: timeouts, retries and backoff around a provider's ``_stream``.

Each provider implements only the model call. The public ``stream`` adds what
every provider needs and none should re-implement: a first-token timeout, an
idle timeout between tokens, and retries with exponential backoff on transient
failures, only before the first token (a retry after that would repeat words
the user has already heard).
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from companion.runtime.registry import Registry
from companion.text.tokens import estimate_tokens

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

__all__ = [
    "LLM",
    "LLMChunk",
    "ToolCall",
    "LLMError",
    "LLMConnectionError",
    "LLMTimeoutError",
    "LLMHTTPError",
    "GenerationOptions",
    "LLMContextOverflow",
    "LLMPreempted",
    "Priority",
]

Message = dict[str, Any]


class LLMError(Exception):
    """The LLM could not answer; the message says why and what to do."""

    retryable: bool = False


class LLMConnectionError(LLMError):
    retryable = True


class LLMContextOverflow(LLMError):
    """The prompt is longer than the model's context window; the engine retries with less history."""


class LLMPreempted(LLMError):
    """More urgent work took the model; the caller treats this reply as interrupted, background work retries later."""


class Priority(IntEnum):
    """Who waits on a model call, most urgent first (lower value wins)."""

    REPLY = 0  # a person waiting for an answer
    FORCED_ACTION = 1  # a game waiting for an action
    COMMENTARY = 2  # game commentary, speaking up: nobody waits, preempted by the above
    BACKGROUND = 3  # memory extraction, summaries: only when nothing else runs, retried when preempted


class LLMTimeoutError(LLMError):
    """No token within the time allowed; not retried, so a hung server costs one wait, not several."""


class LLMHTTPError(LLMError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = status == 429 or status >= 500


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True, slots=True)
class LLMChunk:
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    max_tokens: int = 256
    temperature: float = 0.8
    tools: Sequence[dict[str, Any]] = field(default_factory=tuple)
    # OpenAI-style structured output, e.g. {"type": "json_schema", ...}; providers that
    # cannot constrain decoding ignore it, so callers must still validate.
    response_format: dict[str, Any] | None = None
    priority: Priority = Priority.REPLY
    # Strings that end the reply (the other speaker's turn starting); providers that take
    # them pass them on, and the text layer stops there anyway.
    stop: Sequence[str] = field(default_factory=tuple)
    # What this prompt continues ("conversation:<id>"): a local model keeps that conversation's cache
    # in one place (and on disk), so the next turn, even in a new process, reads only what is new.
    cache_key: str = ""
    # Read the prompt into the cache only up to where this text stands in it (a read-ahead of the next turn, whose
    # new message is not known yet): nothing is generated. Providers that keep a cache per key (``prefills_ahead``).
    read_to: str = ""


class LLM(ABC):
    """A chat model that streams text."""

    name: str = "llm"

    def __init__(
        self,
        *,
        first_token_timeout: float = 60.0,
        idle_timeout: float = 30.0,
        retries: int = 2,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
    ) -> None:
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    async def start(self) -> None:
        """Load models or open sessions; called once before the first turn."""

    async def close(self) -> None:
        """Release what ``start`` acquired."""

    async def warm(self, messages: list[Message]) -> None:
        """Pre-compute what a prompt starting with ``messages`` needs (local models cache it); default: nothing."""

    async def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens each text takes in this model's prompt; an estimate unless the provider has the tokenizer."""
        return [estimate_tokens(t) for t in texts]

    async def check(self) -> str:
        """Verify the provider can answer (for ``companion doctor``); returns a one-line status."""
        return "ok"

    async def stream(self, messages: list[Message], options: GenerationOptions | None = None) -> AsyncIterator[LLMChunk]:
        """Stream the reply to ``messages``; raises LLMError subclasses with actionable messages."""
        options = options or GenerationOptions()
        attempt = 0
        while True:
            agen = self._stream(messages, options).__aiter__()
            try:
                try:
                    async with asyncio.timeout(self.first_token_timeout):
                        first = await agen.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise LLMTimeoutError(
                        f"{self.name}: no answer within {self.first_token_timeout:g} s; "
                        "the server may be overloaded or the model still loading (llm.first_token_timeout)"
                    ) from None
                except LLMError as exc:
                    if not exc.retryable or attempt >= self.retries:
                        raise
                    attempt += 1
                    delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
                    delay *= 0.75 + random.random() * 0.5
                    log.warning("%s: %s; retry %d/%d in %.1f s", self.name, exc, attempt, self.retries, delay)
                    await asyncio.sleep(delay)
                    continue
                yield first
                while True:
                    try:
                        async with asyncio.timeout(self.idle_timeout):
                            chunk = await agen.__anext__()
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        raise LLMTimeoutError(
                            f"{self.name}: the reply stalled for {self.idle_timeout:g} s mid-stream (llm.idle_timeout)"
                        ) from None
                    yield chunk
            finally:
                await aclose(agen)

    @abstractmethod
    def _stream(self, messages: list[Message], options: GenerationOptions) -> AsyncIterator[LLMChunk]:
        """Yield chunks of the reply; raise LLMError subclasses on failure."""


async def aclose(stream: AsyncIterator[Any]) -> None:
    """Close a stream early (a llama.cpp slot or an HTTP response is freed); any async iterator may lack aclose()."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


# LLM providers by name ([llm] provider, [llm] fallback): each provider module registers a factory
# ``(settings, **common) -> LLM``, where ``common`` holds the timeouts and retries every provider takes.
PROVIDERS: Registry[Callable[..., LLM]] = Registry("LLM provider", "companion.llm", "companion.llm")
