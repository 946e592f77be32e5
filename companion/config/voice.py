"""[voice]: the microphone, speech-to-text and text-to-speech."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from companion.config.base import _Section


class STTSection(_Section):
    provider: Literal["faster-whisper", "openai"] = Field(
        "faster-whisper", description='"faster-whisper" (local) or "openai" (any /v1/audio/transcriptions server).'
    )
    model: str = Field(
        "",
        description="faster-whisper: size name (tiny, base, small...), hub id or CTranslate2 folder; empty: the embedded "
        "whisper-base. openai: the model name on the server (e.g. whisper-1).",
    )
    language: str = Field("en", description="Spoken language code; empty: detect (slower).")
    device: str = Field("cpu", description='faster-whisper device: "cpu", "cuda", "auto".')
    compute_type: str = Field("int8", description='faster-whisper precision: "int8" (CPU), "float16" (GPU), "int8_float16".')
    beam_size: int = Field(
        5, ge=1, le=10,
        description="Beam size of the final transcript (partials are greedy). 5: on spoken questions with names, whisper-base "
        "lost 10 words of the script where greedy lost 16, in 374 against 262 ms here (bench/stt.py).",
    )
    threads: int = Field(0, ge=0, description="CPU threads for faster-whisper (0: its default).")
    context_s: float = Field(
        10.0, ge=0, le=30,
        description="faster-whisper: seconds of audio the encoder reads for an utterance shorter than this (longer ones: "
        "their length plus 2 s). Whisper's own window is 30 s and costs the same for a 2-second question; 10 s makes "
        "the encoder about 6x cheaper with the same words on spoken questions. 0 or 30: always the full window.",
    )
    base_url: str = Field("", description="openai provider: the server (empty: llm.openai.base_url).")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai provider: environment variable read for the API key.")


class TTSSection(_Section):
    provider: Literal["piper", "openai", "espeak", "coqui"] = Field(
        "piper",
        description='"piper" (local, embedded voice), "openai" (any /v1/audio/speech server: OpenAI, Kokoro, XTTS), '
        '"espeak" (espeak-ng, robotic, no model), "coqui" (Coqui TTS package, GPU users).',
    )
    voice: str = Field(
        "",
        description="piper: path of a voice .onnx (empty: the embedded en_US joe); openai: voice name (e.g. alloy); "
        "espeak: voice (e.g. en-us); coqui: speaker name.",
    )
    model: str = Field("", description="openai: model name (e.g. tts-1, kokoro); coqui: model name.")
    speed: float = Field(1.0, gt=0.25, le=4.0, description="Speaking rate (1.0 normal).")
    base_url: str = Field("", description="openai provider: the server (empty: llm.openai.base_url).")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai provider: environment variable read for the API key.")
    format: Literal["pcm", "wav"] = Field("pcm", description="openai provider: response format (pcm streams; wav for servers without pcm).")
    sample_rate: int = Field(24000, ge=8000, le=96000, description="openai provider with pcm: the server's PCM rate.")


class VoiceSection(_Section):
    enabled: bool = Field(False, description="`companion run` listens on the microphone and speaks on the speaker.")
    input_device: str = Field("", description="Microphone (sounddevice name or index; empty: the system default).")
    output_device: str = Field("", description="Speaker (sounddevice name or index; empty: the system default).")
    vad: Literal["silero", "webrtc"] = Field("silero", description='Speech detection: "silero" (accurate) or "webrtc" (lighter).')
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Speech probability at which a frame counts as speech.")
    silence_ms: int = Field(300, ge=100, le=3000, description="Silence after speech that ends a turn (the end-of-speech wait).")
    min_speech_ms: int = Field(250, ge=0, le=5000, description="Shorter sounds are ignored (clicks, coughs).")
    barge_in: Literal["on", "off", "min_speech"] = Field(
        "on", description='Interrupt the companion when the person speaks: "on", "off", or "min_speech" (after barge_in_min_ms).'
    )
    echo_cancel: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Take her own voice out of the microphone (WebRTC echo cancellation), so she can talk through "
        'speakers and still be interrupted: "auto" (on unless the output device is named like headphones or a '
        'headset), "on" or "off".',
    )
    barge_in_min_ms: int = Field(300, ge=0, le=5000, description="Speech needed to interrupt when barge_in = \"min_speech\".")
    commit_seconds: float = Field(
        8.0, ge=2, le=28, description="Long speech is transcribed in stretches of about this length at its pauses, while it goes on."
    )
    pause_ms: int = Field(
        64, ge=0, le=1000,
        description="Silence inside speech after which what was said so far is transcribed, in case it is the end "
        "(shorter gaps, between words, are not worth a decode that would be thrown away). Below silence_ms.",
    )
    stretch_pause_ms: int = Field(
        128, ge=0, le=2000,
        description="A pause this long inside speech (between sentences) ends a stretch that is transcribed while the "
        "person goes on, so the transcript at the end reads only the rest and is ready sooner (0: only commit_seconds).",
    )
    first_chunk_words: int = Field(
        6, ge=0, le=50,
        description="Speak the first words of a reply after this many words even before any punctuation "
        "(0: wait for a clause or sentence end); the first audio starts sooner.",
    )
    conversation: str = Field("voice", description="Conversation id of the local voice chat (history and memory).")
    stt: STTSection = Field(default_factory=STTSection)
    tts: TTSSection = Field(default_factory=TTSSection)
