"""TTS through any OpenAI-compatible ``/v1/audio/speech`` server (OpenAI, Kokoro, XTTS and Coqui servers).

Asks for raw PCM (24 kHz 16-bit mono in OpenAI's API) and plays it as it
streams in; ``format = "wav"`` suits servers that only return WAV.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import numpy as np

from companion.config import secret_value
from companion.voice.audio import AudioError, parse_wav
from companion.voice.tts.base import TTS, TTS_PROVIDERS, TTSError

if TYPE_CHECKING:
    from companion.config import Settings


class OpenAITTS(TTS):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "tts-1",
        voice: str = "alloy",
        api_key: str | None = None,
        response_format: str = "pcm",
        sample_rate: int = 24_000,
        speed: float = 1.0,
        timeout: float = 30.0,
    ) -> None:
        if response_format not in ("pcm", "wav"):
            raise TTSError(f"voice.tts.format {response_format!r} is not supported; use 'pcm' or 'wav'")
        self.url = base_url.rstrip("/") + "/audio/speech"
        self.model = model
        self.voice = voice
        self._api_key = api_key
        self.format = response_format
        self.sample_rate = sample_rate
        self.speed = speed
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._session = aiohttp.ClientSession(
                headers=headers, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=self.timeout)
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        await self.start()
        assert self._session is not None
        body = {"model": self.model, "voice": self.voice, "input": text, "response_format": self.format, "speed": self.speed}
        try:
            async with self._session.post(self.url, json=body) as resp:
                if resp.status >= 400:
                    raise TTSError(f"speech server {self.url} answered {resp.status}: {(await resp.text())[:200]}")
                if self.format == "wav":
                    try:
                        audio = parse_wav(await resp.read(), f"speech from {self.url}")
                    except AudioError as exc:
                        raise TTSError(str(exc)) from None
                    self.sample_rate = audio.rate
                    yield audio.samples
                    return
                carry = b""
                async for block in resp.content.iter_chunked(4800):
                    data = carry + block
                    usable = len(data) - len(data) % 2
                    carry = data[usable:]
                    if usable:
                        yield np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TTSError(f"speech server {self.url} unreachable: {exc or type(exc).__name__}") from None


@TTS_PROVIDERS.register("openai")
def from_settings(settings: Settings) -> OpenAITTS:
    """An OpenAI-compatible speech endpoint."""
    cfg = settings.voice.tts
    return OpenAITTS(
        cfg.base_url or settings.llm.openai.base_url,
        model=cfg.model or "tts-1",
        voice=cfg.voice or "alloy",
        api_key=secret_value(None, cfg.api_key_env),
        response_format=cfg.format,
        sample_rate=cfg.sample_rate,
        speed=cfg.speed,
    )
