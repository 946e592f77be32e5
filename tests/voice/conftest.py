"""Speech made on the spot (espeak-ng, piper) for the voice tests; no audio files are checked in."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from companion.voice.audio import INPUT_RATE, Audio, read_wav, write_wav


def espeak(text: str, path: Path, *, wpm: int = 160) -> Path:
    """A WAV of ``text`` spoken by espeak-ng (22050 Hz mono, 16-bit)."""
    if shutil.which("espeak-ng") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("espeak-ng is missing in CI: scripts/apt-packages.sh should have installed it")
        pytest.skip("espeak-ng is not installed (apt install espeak-ng); CI installs it")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(wpm), "-w", str(path), text], check=True)
    return path


def speech_16k(text: str, tmp_path: Path, name: str = "speech") -> np.ndarray:
    return read_wav(espeak(text, tmp_path / f"{name}.wav")).samples


def with_silence(samples: np.ndarray, before: float = 0.3, after: float = 1.0) -> Audio:
    pad = lambda s: np.zeros(int(s * INPUT_RATE), np.float32)  # noqa: E731
    return Audio(np.concatenate([pad(before), samples, pad(after)]), INPUT_RATE)


@pytest.fixture
def say(tmp_path: Path):
    """say(text) -> path of a 16 kHz WAV with the text spoken by espeak-ng and silence around it."""

    def make(text: str, name: str = "q") -> Path:
        path = tmp_path / f"{name}-16k.wav"
        write_wav(path, with_silence(speech_16k(text, tmp_path, name)))
        return path

    return make


@pytest.fixture(scope="session")
def whisper(tmp_path_factory):
    """The embedded whisper-base, assembled and loaded once for the whole session."""
    from companion.voice.stt.faster_whisper import FasterWhisperSTT

    stt = FasterWhisperSTT("", cache_dir=tmp_path_factory.mktemp("models"))
    stt._model = stt._load()  # noqa: SLF001 - load synchronously so every test's loop can use it
    return stt


@pytest.fixture(scope="session")
def piper_voice():
    """The embedded piper voice, loaded once."""
    from companion.voice.tts.piper import PiperTTS

    tts = PiperTTS()
    tts._voice = tts._load()  # noqa: SLF001
    tts.sample_rate = int(tts._voice.config.sample_rate)  # noqa: SLF001
    return tts


def words(text: str) -> set[str]:
    return {"".join(c for c in w.lower() if c.isalnum()) for w in text.split()} - {""}
