"""Any OpenAI-compatible chat completions server, streamed over SSE.

Ollama, vLLM, llama.cpp server, LM Studio, OpenRouter and OpenAI all speak
this; it is how a user moves the model to a bigger machine.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from companion.llm.base import (
    LLM,
    PROVIDERS,
    GenerationOptions,
    LLMChunk,
    LLMConnectionError,
    LLMContextOverflow,
    LLMError,
    LLMHTTPError,
    Message,
)
from companion.llm.chunks import read_choice, text_only_messages, tool_calls
from companion.llm.sampling import sampling_for

if TYPE_CHECKING:
    from companion.config import Settings

log = logging.getLogger(__name__)


class OpenAILLM(LLM):
    name = "openai"
    capacity = 1  # requests the server takes at once ([llm.openai] concurrency; the scheduler admits this many)

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        vision: bool = True,
        connect_timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self._api_key_env = api_key_env
        self.vision = vision
        self.connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._warned_images = False
        self.sampling: dict[str, Any] = {}  # sampler fields sent with every free-text request ([llm.sampling])

    async def start(self) -> None:
        self._ensure_session()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def check(self) -> str:
        session = self._ensure_session()
        url = f"{self.base_url}/models"
        try:
            async with session.get(url, headers=self._headers()) as resp:
                if resp.status >= 400:
                    raise self._http_error(resp.status, await resp.text())
                body = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise LLMConnectionError(self._connect_message(exc)) from None
        ids = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
        if ids and self.model not in ids:
            raise LLMError(
                f"openai: {self.base_url} is up but has no model {self.model!r}; it has: {', '.join(map(str, ids[:10]))}. "
                "Set llm.openai.model (for Ollama: `ollama pull <model>` first)"
            )
        return f"{self.base_url} answers; model {self.model!r} available"

    def _payload(self, messages: list[Message], options: GenerationOptions) -> dict[str, Any]:
        if not self.vision:
            messages = self._without_images(messages)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }
        if options.tools:
            payload["tools"] = list(options.tools)
        if options.response_format:
            payload["response_format"] = options.response_format
        else:  # penalties on repeats would bend a JSON answer (its keys repeat by design)
            payload.update(self.sampling)
        return payload

    def _without_images(self, messages: list[Message]) -> list[Message]:
        out, dropped = text_only_messages(messages, None if self._warned_images else log, "llm.openai.vision = false")
        self._warned_images = self._warned_images or dropped
        return out

    async def _stream(self, messages: list[Message], options: GenerationOptions) -> AsyncIterator[LLMChunk]:
        session = self._ensure_session()
        url = f"{self.base_url}/chat/completions"
        try:
            async with session.post(url, json=self._payload(messages, options), headers=self._headers()) as resp:
                if resp.status >= 400:
                    raise self._http_error(resp.status, await resp.text())
                async for chunk in self._read_sse(resp):
                    yield chunk
        except aiohttp.ClientPayloadError:
            raise LLMConnectionError(f"openai: {self.base_url} closed the connection mid-reply") from None
        except aiohttp.ClientError as exc:
            raise LLMConnectionError(self._connect_message(exc)) from None

    async def _read_sse(self, resp: aiohttp.ClientResponse) -> AsyncIterator[LLMChunk]:
        tools: dict[int, dict[str, str]] = {}
        finished = False
        data_lines: list[str] = []
        async for raw in resp.content:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line.startswith("data:"):
                data_lines.append(line[5:].lstrip())
                continue
            if line.startswith(":") or line.startswith(("event:", "id:", "retry:")):
                continue
            if line == "" and data_lines:
                data, data_lines = "\n".join(data_lines), []
                if data == "[DONE]":
                    finished = True
                    break
                chunk, done = self._parse_event(data, tools)
                finished = finished or done
                if chunk is not None:
                    yield chunk
        if data_lines and "\n".join(data_lines) == "[DONE]":
            finished = True
        if tools:
            yield LLMChunk(tool_calls=tool_calls(tools), finish_reason="tool_calls")
        if not finished:
            raise LLMConnectionError(f"openai: {self.base_url} ended the stream before the reply was complete")

    def _parse_event(self, data: str, tools: dict[int, dict[str, str]]) -> tuple[LLMChunk | None, bool]:
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            raise LLMError(f"openai: {self.base_url} sent something that is not JSON in the stream: {data[:120]!r}") from None
        if "error" in event:
            err = event["error"]
            message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            raise LLMError(f"openai: the server reported an error mid-stream: {message}")
        choices = event.get("choices") or []
        if not choices:
            return None, False
        return read_choice(choices[0], tools)

    def _http_error(self, status: int, body: str) -> LLMHTTPError:
        detail = _error_detail(body)
        if status in (401, 403):
            where = f"llm.openai.api_key or the environment variable {self._api_key_env}"
            return LLMHTTPError(status, f"openai: {self.base_url} refused the API key (HTTP {status}: {detail}); check {where}")
        if status == 404:
            return LLMHTTPError(
                status,
                f"openai: HTTP 404 from {self.base_url} ({detail}); check llm.openai.base_url (it usually ends in /v1) "
                f"and that model {self.model!r} exists there",
            )
        if status == 429:
            return LLMHTTPError(status, f"openai: rate limited by {self.base_url} (HTTP 429: {detail})")
        if status >= 500:
            return LLMHTTPError(status, f"openai: server error from {self.base_url} (HTTP {status}: {detail})")
        if status == 400 and "context" in detail.lower() and ("length" in detail.lower() or "exceed" in detail.lower()):
            return ContextOverflowHTTPError(
                status, f"openai: the prompt is longer than model {self.model!r}'s context window ({detail})"
            )
        return LLMHTTPError(status, f"openai: the server rejected the request (HTTP {status}: {detail})")

    def _connect_message(self, exc: Exception) -> str:
        return (
            f"openai: cannot reach {self.base_url} ({type(exc).__name__}: {exc}); is the server running? "
            "(Ollama: `ollama serve`; vLLM: `vllm serve <model>`)"
        )


class ContextOverflowHTTPError(LLMHTTPError, LLMContextOverflow):
    """HTTP 400 for a prompt over the context window (vLLM, llama.cpp server, OpenAI say so in the message)."""


def _error_detail(body: str) -> str:
    try:
        data = json.loads(body)
        err = data.get("error", data)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:300]
        return str(err)[:300]
    except (json.JSONDecodeError, AttributeError):
        return body.strip()[:300] or "no details"


@PROVIDERS.register("openai")
def from_settings(settings: Settings, **common: Any) -> OpenAILLM:
    """Any OpenAI-compatible server: Ollama, vLLM, LM Studio, llama.cpp server, OpenRouter, OpenAI."""
    o = settings.llm.openai
    llm = OpenAILLM(
        base_url=o.base_url, model=o.model, api_key=settings.openai_api_key(), api_key_env=o.api_key_env,
        vision=o.vision, connect_timeout=o.connect_timeout, **common,
    )
    llm.capacity = o.concurrency  # the server takes this many requests at once
    sampling = settings.llm.sampling
    extras = sampling.server_extras == "yes" or (sampling.server_extras == "auto" and is_local_url(o.base_url))
    llm.sampling = sampling_for(None, sampling.overrides()).openai(extras)
    return llm


def is_local_url(url: str) -> bool:
    """A server on this machine or the local network (llama.cpp, vLLM, Ollama...), not a hosted API that may refuse unknown fields."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "host.docker.internal") or host.endswith((".local", ".lan", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local
