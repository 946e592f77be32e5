"""The text-to-speech interface: one sentence in, audio chunks out as soon as they exist."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from companion.runtime.registry import Registry
from companion.voice.errors import VoiceError

if TYPE_CHECKING:
    from companion.config import Settings

__all__ = ["TTS", "TTSError", "ThreadedTTS"]

T = TypeVar("T")


class TTSError(VoiceError):
    """Speech cannot be made; the message says why and what to do."""


class TTS(ABC):
    name = "tts"
    sample_rate: int = 22_050

    async def start(self) -> None:
        """Load the voice or check the server (idempotent); sets ``sample_rate``."""

    async def close(self) -> None:
        """Release the voice or connection."""

    @abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        """Mono float32 chunks at ``sample_rate`` for one sentence, yielded as soon as each is ready."""


class ThreadedTTS(TTS):
    """Base for in-process engines: synthesis runs on one worker thread, off the event loop."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"tts-{self.name}")

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# Text-to-speech engines by name ([voice.tts] provider): each module here registers ``(settings) -> TTS``.
TTS_PROVIDERS: Registry[Callable[[Settings], TTS]] = Registry("text-to-speech provider", "companion.voice.tts", "companion.tts")
