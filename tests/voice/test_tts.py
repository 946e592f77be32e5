"""Text to speech: piper (round trip through whisper), espeak-ng, an OpenAI-compatible server, Coqui."""

import importlib.util

import numpy as np
import pytest

from companion.voice.audio import Audio, wav_bytes
from companion.voice.tts.base import TTSError
from companion.voice.tts.coqui import CoquiTTS
from companion.voice.tts.espeak import EspeakTTS
from companion.voice.tts.openai import OpenAITTS
from tests.voice.conftest import espeak, words


async def collect(tts, text: str) -> np.ndarray:
    chunks = [c async for c in tts.synthesize(text)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


@pytest.mark.slow
async def test_piper_speech_is_understood_by_whisper(piper_voice, whisper):
    """What piper says, whisper hears: the reply's keywords survive the round trip."""
    audio = await collect(piper_voice, "The library opens at nine on Saturday morning.")
    assert piper_voice.sample_rate == 22050 and len(audio) > 22050
    heard = words(await whisper.transcribe(Audio(audio, 22050).to(16000).samples))
    assert {"library", "saturday", "morning"} <= heard and heard & {"nine", "9"}, heard


async def test_espeak_makes_audio(tmp_path):
    """espeak-ng yields one chunk of speech at its own rate."""
    espeak("check", tmp_path / "check.wav")  # skips (or fails in CI) without espeak-ng
    tts = EspeakTTS()
    audio = await collect(tts, "Hello from espeak.")
    assert tts.sample_rate == 22050 and len(audio) > 0.5 * tts.sample_rate and np.abs(audio).max() > 0.05


async def test_openai_speech_streams_pcm(fake_openai):
    """Raw 24 kHz PCM from /v1/audio/speech is streamed in chunks, even when a sample is split across two."""
    tone = (np.sin(np.arange(24000) / 24000 * 2 * np.pi * 440) * 0.5).astype(np.float32)
    fake_openai.speech = (tone * 32767).astype("<i2").tobytes()
    tts = OpenAITTS(fake_openai.base_url, model="kokoro", voice="af_heart")
    try:
        chunks = [c async for c in tts.synthesize("Hello!")]
    finally:
        await tts.close()
    audio = np.concatenate(chunks)
    assert len(chunks) > 1 and len(audio) == 24000
    assert np.allclose(audio, tone, atol=1e-3)
    sent = fake_openai.audio_requests[-1]
    assert (sent["model"], sent["voice"], sent["input"], sent["response_format"]) == ("kokoro", "af_heart", "Hello!", "pcm")


async def test_openai_speech_wav_format(fake_openai):
    """Servers that only send WAV work with format = "wav", at the WAV's own rate."""
    fake_openai.speech = wav_bytes(Audio(np.zeros(16000, np.float32), 16000))
    tts = OpenAITTS(fake_openai.base_url, response_format="wav")
    try:
        audio = await collect(tts, "Hi")
    finally:
        await tts.close()
    assert tts.sample_rate == 16000 and len(audio) == 16000


async def test_coqui_without_the_package_says_how_to_get_it():
    """Without Coqui TTS installed, the error says what to install or use instead."""
    if importlib.util.find_spec("TTS") is not None:
        pytest.skip("Coqui TTS is installed here; this checks the message when it is absent")
    with pytest.raises(TTSError, match="coqui-tts|openai"):
        await CoquiTTS().start()


@pytest.mark.skipif(importlib.util.find_spec("TTS") is None, reason="Coqui TTS is not installable offline here (needs torchaudio and hub models)")
async def test_coqui_speaks():
    """With Coqui TTS and its model present, it yields audio."""
    tts = CoquiTTS()
    audio = await collect(tts, "Hello.")
    assert len(audio) > 0
