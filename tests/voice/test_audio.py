"""WAV input in every common shape, and clear errors for what cannot be read."""

import wave

import numpy as np
import pytest

from companion.voice.audio import INPUT_RATE, AudioError, read_wav
from companion.voice.vad import SileroVAD
from tests.voice.conftest import espeak


def write_raw(path, samples: np.ndarray, rate: int, width: int, channels: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def speech_fraction(samples: np.ndarray) -> float:
    vad = SileroVAD()
    frames = [samples[i : i + 512] for i in range(0, len(samples) - 511, 512)]
    return sum(vad.prob(f) > 0.5 for f in frames) / max(1, len(frames))


@pytest.fixture
def speech(tmp_path):
    path = espeak("Please remember that my cat is called Pepper", tmp_path / "s.wav")
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def test_stereo_8bit_and_other_rates_become_16k_mono_speech(tmp_path, speech):
    """Stereo, 8-bit and 44.1 kHz files are converted, and the speech in them is still detected."""
    samples, rate = speech
    stereo = np.stack([samples, samples], axis=1).reshape(-1)
    write_raw(tmp_path / "stereo.wav", stereo.astype("<i2"), rate, 2, 2)
    write_raw(tmp_path / "u8.wav", ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8), rate, 1, 1)
    up = np.interp(np.arange(0, len(samples), rate / 44100), np.arange(len(samples)), samples).astype("<i2")
    write_raw(tmp_path / "44k.wav", up, 44100, 2, 1)
    for name in ("stereo", "u8", "44k"):
        audio = read_wav(tmp_path / f"{name}.wav")
        assert audio.rate == INPUT_RATE
        assert abs(audio.seconds - len(samples) / rate) < 0.05, name
        assert speech_fraction(audio.samples) > 0.4, name


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"ID3\x04\x00\x00" + b"\x00" * 200, "not a WAV file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x03\x00\x01\x00", "unreadable WAV"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    """Empty, non-WAV and broken WAV files raise AudioError naming the file and the fix."""
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as err:
        read_wav(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_missing_file(tmp_path):
    """A path that does not exist says so."""
    with pytest.raises(AudioError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
