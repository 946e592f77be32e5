"""Voice providers and the pipeline, built from ``[voice]`` settings, and the one set of models a process shares."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from companion.config import Settings
from companion.runtime.registry import RegistryError
from companion.voice.playback import PlaybackBuffer
from companion.voice.policy import BargeIn, TurnPolicy
from companion.voice.stt.base import STT, STT_PROVIDERS, STTError
from companion.voice.tts.base import TTS, TTS_PROVIDERS, TTSError
from companion.voice.vad import VAD, build_vad

if TYPE_CHECKING:
    from companion.core.engine import Companion
    from companion.voice.pipeline import VoicePipeline

__all__ = ["build_stt", "build_tts", "build_voice_vad", "build_pipeline"]


def build_stt(settings: Settings) -> STT:
    """The configured speech-to-text engine, from the registry its module joined (``stt.base.STT_PROVIDERS``)."""
    try:
        return STT_PROVIDERS.get(settings.voice.stt.provider)(settings)
    except RegistryError as exc:
        raise STTError(str(exc)) from None


def build_tts(settings: Settings) -> TTS:
    """The configured text-to-speech engine, from the registry its module joined (``tts.base.TTS_PROVIDERS``)."""
    try:
        return TTS_PROVIDERS.get(settings.voice.tts.provider)(settings)
    except RegistryError as exc:
        raise TTSError(str(exc)) from None


def build_voice_vad(settings: Settings) -> VAD:
    return build_vad(settings.voice.vad)


def build_policy(settings: Settings) -> TurnPolicy:
    v = settings.voice
    return TurnPolicy(
        threshold=v.vad_threshold,
        release=min(v.vad_threshold, max(0.05, v.vad_threshold - 0.15)),
        silence_ms=v.silence_ms,
        min_speech_ms=v.min_speech_ms,
        pause_ms=min(v.pause_ms, v.silence_ms - 32),
    )


def build_pipeline(
    companion: "Companion",
    settings: Settings,
    *,
    stt: STT,
    tts: TTS,
    buffer: PlaybackBuffer,
    conversation_id: str | None = None,
    speaker_id: str = "local",
    speaker_name: str | None = None,
    cast: Any = None,
) -> "VoicePipeline":
    from companion.voice.pipeline import VoicePipeline

    v = settings.voice
    return VoicePipeline(
        companion,
        vad=build_voice_vad(settings),
        stt=stt,
        tts=tts,
        buffer=buffer,
        policy=build_policy(settings),
        barge_in=BargeIn(v.barge_in, v.barge_in_min_ms),
        conversation_id=conversation_id or v.conversation,
        speaker_id=speaker_id,
        speaker_name=speaker_name,
        commit_seconds=v.commit_seconds,
        stretch_pause_ms=v.stretch_pause_ms,
        first_words=v.first_chunk_words,
        cast=cast,
    )


class VoiceModels:
    """One set of voice models per process: the local microphone, the browser voice and Discord share them.

    Each model is built and started on first use (Discord speaking needs only TTS; listening needs STT too) and
    closed once, at shutdown, by whoever created the set.
    """

    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.stt: Any = None
        self.tts: Any = None
        self.builds = 0  # models built (tests check that a process builds each once)
        self._built: list[Any] = []  # only models built here are closed here (a host may hand in shared ones)
        self._lock = asyncio.Lock()

    async def get_stt(self) -> Any:
        return await self._model("stt")

    async def get_tts(self) -> Any:
        return await self._model("tts")

    async def _model(self, kind: str) -> Any:
        async with self._lock:
            if getattr(self, kind) is None:
                model = (build_stt if kind == "stt" else build_tts)(self.settings)
                await model.start()
                setattr(self, kind, model)
                self.builds += 1
                self._built.append(model)
        return getattr(self, kind)

    async def get(self) -> tuple[Any, Any]:
        return await self.get_stt(), await self.get_tts()

    async def close(self) -> None:
        built, self._built = self._built, []
        self.stt = self.tts = None
        for model in built:
            await model.close()
