"""STT through any OpenAI-compatible ``/v1/audio/transcriptions`` endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import numpy as np

from companion.config import secret_value
from companion.voice.audio import INPUT_RATE, Audio, wav_bytes
from companion.voice.stt.base import STT, STT_PROVIDERS, STTError

if TYPE_CHECKING:
    from companion.config import Settings

__all__ = ["OpenAISTT"]


class OpenAISTT(STT):
    name = "openai"

    def __init__(self, base_url: str, model: str = "whisper-1", api_key: str | None = None, language: str = "en", timeout: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + "/audio/transcriptions"
        self.model = model
        self._api_key = api_key
        self.language = language
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def transcribe(self, samples: np.ndarray, *, partial: bool = False, prompt: str = "") -> str:
        await self.start()
        assert self._session is not None
        if len(samples) < 1600:
            return ""
        form = aiohttp.FormData()
        form.add_field("file", wav_bytes(Audio(samples, INPUT_RATE)), filename="speech.wav", content_type="audio/wav")
        form.add_field("model", self.model)
        form.add_field("response_format", "json")
        if self.language:
            form.add_field("language", self.language)
        if prompt:
            form.add_field("prompt", prompt[-500:])
        try:
            async with self._session.post(self.url, data=form) as resp:
                if resp.status >= 400:
                    detail = (await resp.text())[:200]
                    raise STTError(f"transcription server {self.url} answered {resp.status}: {detail}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise STTError(f"transcription server {self.url} unreachable: {exc or type(exc).__name__}") from None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise STTError(f"transcription server {self.url} answered without a 'text' field")
        return text.strip()


@STT_PROVIDERS.register("openai")
def from_settings(settings: Settings) -> OpenAISTT:
    """An OpenAI-compatible transcription endpoint (whisper-1, or a local server)."""
    cfg = settings.voice.stt
    return OpenAISTT(
        cfg.base_url or settings.llm.openai.base_url,
        cfg.model or "whisper-1",
        secret_value(None, cfg.api_key_env),
        language=cfg.language,
    )
