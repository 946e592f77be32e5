"""espeak-ng through its command line: robotic, but needs nothing beyond an apt package."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import numpy as np

from companion.voice.audio import AudioError, parse_wav
from companion.voice.tts.base import TTS, TTS_PROVIDERS, TTSError

if TYPE_CHECKING:
    from companion.config import Settings


class EspeakTTS(TTS):
    name = "espeak"

    def __init__(self, voice: str = "en-us", *, words_per_minute: int = 175, binary: str = "espeak-ng") -> None:
        self.voice = voice or "en-us"
        self.wpm = words_per_minute
        self.binary = binary

    async def start(self) -> None:
        if shutil.which(self.binary) is None:
            raise TTSError(f"{self.binary} is not installed: sudo apt install espeak-ng (or pick another [voice.tts] provider)")

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        await self.start()
        proc = await asyncio.create_subprocess_exec(
            self.binary, "--stdout", "-v", self.voice, "-s", str(self.wpm), "--", text,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await proc.communicate()
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
            raise
        if proc.returncode != 0:
            raise TTSError(f"espeak-ng failed ({proc.returncode}): {err.decode(errors='replace').strip()[:200]}")
        try:
            audio = parse_wav(out, "espeak-ng output")
        except AudioError as exc:
            raise TTSError(str(exc)) from None
        self.sample_rate = audio.rate
        yield audio.samples


@TTS_PROVIDERS.register("espeak")
def from_settings(settings: Settings) -> EspeakTTS:
    """espeak-ng: robotic, tiny, every language."""
    cfg = settings.voice.tts
    return EspeakTTS(cfg.voice or "en-us", words_per_minute=int(175 * cfg.speed))
