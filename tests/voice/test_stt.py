"""Speech to text with the real embedded whisper-base, and through an OpenAI-compatible server."""

import numpy as np
import pytest

from companion.voice.audio import INPUT_RATE, read_wav
from companion.voice.stt.base import STTError
from companion.voice.stt.openai import OpenAISTT
from tests.voice.conftest import speech_16k, words

pytestmark = pytest.mark.slow


async def test_whisper_hears_the_keywords(whisper, tmp_path):
    """espeak-ng speech goes through faster-whisper and the keywords come back."""
    text = await whisper.transcribe(speech_16k("My sister lives in Berlin and plays the violin", tmp_path))
    heard = words(text)
    assert {"sister", "berlin", "violin"} <= heard, text


async def test_partial_of_a_stretch_is_quick_and_plausible(whisper, tmp_path):
    """A partial (greedy, no fallback) of the first words returns those words."""
    audio = speech_16k("Tomorrow morning I am flying to Madrid", tmp_path)
    text = await whisper.transcribe(audio, partial=True)
    assert "madrid" in words(text), text


async def test_silence_and_tiny_clips_give_no_text(whisper):
    """Under 0.1 s of audio is not sent to whisper (it would hallucinate)."""
    assert await whisper.transcribe(np.zeros(800, np.float32)) == ""


async def test_openai_transcription_endpoint(fake_openai, tmp_path):
    """The openai provider uploads a WAV and returns the server's text."""
    stt = OpenAISTT(fake_openai.base_url, "whisper-1")
    try:
        text = await stt.transcribe(speech_16k("hello there", tmp_path))
    finally:
        await stt.close()
    assert text == fake_openai.transcription
    request = fake_openai.audio_requests[-1]
    assert request["wav"] and request["model"] == "whisper-1" and request["bytes"] > INPUT_RATE


async def test_openai_transcription_server_down():
    """An unreachable server is one clear STTError naming it."""
    stt = OpenAISTT("http://127.0.0.1:9/v1")
    with pytest.raises(STTError, match="127.0.0.1:9"):
        await stt.transcribe(np.ones(16000, np.float32) * 0.1)
    await stt.close()


def test_wav_read_matches_whisper_rate(tmp_path, say):
    """Files handed to STT are 16 kHz whatever they were recorded at."""
    assert read_wav(say("testing one two")).rate == INPUT_RATE
