"""Voice providers and the pipeline, built from ``[voice]`` settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from companion.config import Settings, secret_value
from companion.voice.playback import PlaybackBuffer
from companion.voice.policy import BargeIn, TurnPolicy
from companion.voice.stt.base import STT
from companion.voice.tts.base import TTS, TTSError
from companion.voice.vad import VAD, build_vad

if TYPE_CHECKING:
    from companion.core.engine import Companion
    from companion.voice.pipeline import VoicePipeline

__all__ = ["build_stt", "build_tts", "build_voice_vad", "build_pipeline"]


def build_stt(settings: Settings) -> STT:
    cfg = settings.voice.stt
    if cfg.provider == "openai":
        from companion.voice.stt.openai import OpenAISTT

        return OpenAISTT(
            cfg.base_url or settings.llm.openai.base_url,
            cfg.model or "whisper-1",
            secret_value(None, cfg.api_key_env),
            language=cfg.language,
        )
    from companion.voice.stt.faster_whisper import FasterWhisperSTT

    return FasterWhisperSTT(
        cfg.model,
        cache_dir=settings.cache_path() / "models",
        device=cfg.device,
        compute_type=cfg.compute_type,
        language=cfg.language,
        beam_size=cfg.beam_size,
        threads=cfg.threads,
    )


def build_tts(settings: Settings) -> TTS:
    cfg = settings.voice.tts
    if cfg.provider == "piper":
        from companion.voice.tts.piper import PiperTTS

        return PiperTTS(cfg.voice, speed=cfg.speed)
    if cfg.provider == "espeak":
        from companion.voice.tts.espeak import EspeakTTS

        return EspeakTTS(cfg.voice or "en-us", words_per_minute=int(175 * cfg.speed))
    if cfg.provider == "openai":
        from companion.voice.tts.openai import OpenAITTS

        return OpenAITTS(
            cfg.base_url or settings.llm.openai.base_url,
            model=cfg.model or "tts-1",
            voice=cfg.voice or "alloy",
            api_key=secret_value(None, cfg.api_key_env),
            response_format=cfg.format,
            sample_rate=cfg.sample_rate,
            speed=cfg.speed,
        )
    if cfg.provider == "coqui":
        from companion.voice.tts.coqui import CoquiTTS

        return CoquiTTS(cfg.model or "tts_models/en/ljspeech/vits", speaker=cfg.voice)
    raise TTSError(f"unknown voice.tts.provider {cfg.provider!r}")  # pragma: no cover - config validates it


def build_voice_vad(settings: Settings) -> VAD:
    return build_vad(settings.voice.vad)


def build_policy(settings: Settings) -> TurnPolicy:
    v = settings.voice
    return TurnPolicy(
        threshold=v.vad_threshold,
        release=min(v.vad_threshold, max(0.05, v.vad_threshold - 0.15)),
        silence_ms=v.silence_ms,
        min_speech_ms=v.min_speech_ms,
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
        first_words=v.first_chunk_words,
    )
