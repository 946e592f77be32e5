"""Coqui TTS (the ``TTS`` / ``coqui-tts`` package), for users with a GPU and the models already downloaded.

Not installable offline here (it needs torchaudio and fetches models from a
hub), so it is an optional extra and everything is imported lazily; an
OpenAI-compatible XTTS server through the ``openai`` provider is the
dependable route to the same voices.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.voice.tts.base import TTS_PROVIDERS, ThreadedTTS, TTSError

if TYPE_CHECKING:
    from companion.config import Settings


class CoquiTTS(ThreadedTTS):
    name = "coqui"

    def __init__(self, model: str = "tts_models/en/ljspeech/vits", *, speaker: str = "", language: str = "", device: str = "cpu") -> None:
        super().__init__()
        self.model = model
        self.speaker = speaker or None
        self.language = language or None
        self.device = device
        self._tts: Any = None

    def _load(self) -> Any:
        try:
            from TTS.api import TTS as CoquiAPI
        except ImportError as exc:
            raise TTSError(
                f"Coqui TTS is not installed ({exc}): pip install coqui-tts (needs torchaudio), "
                "or run an XTTS/Coqui server and use [voice.tts] provider = \"openai\""
            ) from None
        try:
            return CoquiAPI(self.model).to(self.device)
        except Exception as exc:  # noqa: BLE001
            raise TTSError(f"cannot load Coqui model {self.model!r}: {exc}") from None

    async def start(self) -> None:
        if self._tts is None:
            self._tts = await self._call(self._load)
            self.sample_rate = int(self._tts.synthesizer.output_sample_rate)

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        await self.start()
        wav = await self._call(lambda: self._tts.tts(text, speaker=self.speaker, language=self.language))
        yield np.asarray(wav, dtype=np.float32)


@TTS_PROVIDERS.register("coqui")
def from_settings(settings: Settings) -> CoquiTTS:
    """Coqui TTS (optional, heavy)."""
    cfg = settings.voice.tts
    return CoquiTTS(cfg.model or "tts_models/en/ljspeech/vits", speaker=cfg.voice)
