"""The speech-to-text interface every provider implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from companion.runtime.registry import Registry
from companion.voice.errors import VoiceError

if TYPE_CHECKING:
    from companion.config import Settings

__all__ = ["STT", "STTError"]


class STTError(VoiceError):
    """Transcription is impossible; the message says why and what to do."""


class STT(ABC):
    name = "stt"

    async def start(self) -> None:
        """Load the model or check the server (idempotent)."""

    async def close(self) -> None:
        """Release the model or connection."""

    @abstractmethod
    async def transcribe(self, samples: np.ndarray, *, partial: bool = False, prompt: str = "") -> str:
        """Text of 16 kHz mono float32 ``samples``.

        ``partial`` asks for a quick draft (captions, speculation): greedy,
        no temperature fallback, so a clipped word never costs seconds.
        ``prompt`` is text said just before, to keep names and spelling consistent.
        """


# Speech-to-text engines by name ([voice.stt] provider): each module here registers ``(settings) -> STT``.
STT_PROVIDERS: Registry[Callable[[Settings], STT]] = Registry("speech-to-text provider", "companion.voice.stt", "companion.stt")
