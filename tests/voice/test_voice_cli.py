"""`companion voice` end to end with the embedded defaults, and what it does with bad audio."""

import json
import wave

import numpy as np
import pytest

from companion.config import Settings
from companion.testing import eventually
from companion.voice.audio import read_wav
from tests.cli.test_cli import companion
from tests.voice.conftest import words

pytestmark = pytest.mark.slow


def offline_config(tmp_path) -> str:
    path = tmp_path / "companion.toml"
    path.write_text(f'[companion]\ndata_dir = "{tmp_path / "data"}"\n[memory]\nenabled = false\n[llm]\nmax_tokens = 60\ntemperature = 0.0  # greedy: the same English reply every run, so the round trip is stable\n')
    return str(path)


async def test_full_spoken_turn_with_embedded_defaults(tmp_path, say, whisper):
    """A spoken question gives a transcript with its keywords, a reply WAV at piper's rate, and every timing."""
    question = say("What is the capital of France", "capital")
    out = tmp_path / "reply.wav"
    code, stdout, err = await companion(
        "--config", offline_config(tmp_path), "voice", "--input", str(question), "--output", str(out), "--json", timeout=240
    )
    assert code == 0, err
    data = json.loads(stdout)
    assert {"capital", "france"} <= words(data["transcript"]), data["transcript"]
    assert data["reply"]
    with wave.open(str(out)) as w:
        assert w.getframerate() == 22050 and w.getnchannels() == 1 and w.getnframes() > 22050 // 2
    timings = data["timings"]
    for stage in ("end_detected", "transcript", "first_token", "first_sentence", "first_audio", "playback_start", "voice_to_voice_ms"):
        assert timings[stage] > 0, stage
    assert timings["transcript"] <= timings["first_token"] <= timings["first_sentence"] <= timings["first_audio"] <= timings["playback_start"]
    # what piper said is what whisper hears back
    heard = words(await whisper.transcribe(read_wav(out).samples))
    said = {w for w in words(data["spoken"]) if len(w) > 3}
    assert said and len(said & heard) / len(said) >= 0.6, (said, heard)


async def test_two_hours_of_silence_is_nothing_heard(tmp_path):
    """Two hours of silence end in a clean 'nothing heard', quickly, without a traceback."""
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        block = np.zeros(16000 * 60, dtype="<i2").tobytes()
        for _ in range(120):
            w.writeframes(block)
    code, stdout, err = await companion("--config", offline_config(tmp_path), "voice", "-i", str(path), "--fast", "--json", timeout=240)
    assert code == 0, err
    data = json.loads(stdout)
    assert data["heard"] is False and "nothing heard" in data["message"]
    assert "Traceback" not in err


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"hello, not audio at all" * 10, "not a WAV file")])
async def test_bad_input_files_are_one_line_errors(tmp_path, content, message):
    """Unreadable input fails before any model loads, with one clear line."""
    path = tmp_path / "in.wav"
    path.write_bytes(content)
    code, stdout, err = await companion("--config", offline_config(tmp_path), "voice", "-i", str(path), timeout=60)
    assert code == 1
    assert message in err and "Traceback" not in err


async def test_run_with_voice_and_no_audio_device_keeps_serving(tmp_path, fake_openai):
    """With [voice] on and no microphone, the companion reports it and retries instead of stopping."""
    from companion.app import build_companion
    from companion.runtime.supervisor import FunctionAdapter, Supervisor
    from companion.voice.local import run_local_voice

    settings = Settings.model_validate({
        "companion": {"data_dir": str(tmp_path)},
        "memory": {"enabled": False},
        "llm": {"provider": "openai", "openai": {"base_url": fake_openai.base_url, "model": "m"}},
        "voice": {"enabled": True, "input_device": "no-such-microphone", "stt": {"provider": "openai"}, "tts": {"provider": "espeak"}},
    })
    comp = build_companion(settings)
    await comp.start()
    supervisor = Supervisor(comp.health, first_delay=0.05, max_delay=0.2)
    supervisor.start(FunctionAdapter("voice", lambda stop: run_local_voice(comp, settings, stop)))
    # tried, failed, tried again: still retrying
    await eventually(lambda: comp.health.adapters["voice"].restarts >= 2, what="two tries at the missing microphone")
    voice = comp.health.adapters["voice"]
    result = await comp.respond("still there?", conversation_id="web")  # the rest keeps working
    await supervisor.stop(10)
    await comp.close()
    assert voice.restarts >= 2 and voice.last_error
    assert any(word in voice.last_error for word in ("microphone", "audio", "PortAudio"))
    assert result.reply
