"""PCM audio as numpy arrays, WAV in and out, resampling.

Input audio is 16 kHz mono float32 in [-1, 1] everywhere inside the pipeline
(what VAD and Whisper want); output keeps the TTS's native rate until a sink
needs another one. Anything a user hands us (a WAV of any common format) is
converted here once, with a clear error when it cannot be.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.voice.errors import VoiceError

__all__ = ["Audio", "AudioError", "INPUT_RATE", "resample", "read_wav", "iter_wav", "write_wav", "wav_bytes", "parse_wav"]

INPUT_RATE = 16_000
MAX_WAV_BYTES = 4 * 1024**3  # the RIFF format itself cannot say more


class AudioError(VoiceError):
    """Audio we cannot use; the message names the file, the problem and a fix."""


@dataclass(slots=True)
class Audio:
    """Mono float32 samples at ``rate`` Hz."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def to(self, rate: int) -> "Audio":
        return self if rate == self.rate else Audio(resample(self.samples, self.rate, rate), rate)

    def int16(self) -> np.ndarray:
        return to_int16(self.samples)


def to_int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def to_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    return samples.astype(np.float32, copy=False)


def resample(samples: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Linear-interpolation resampling, with a box pre-filter when going down.

    Good enough for speech between 16, 22.05, 24 and 48 kHz, and free of
    dependencies; a polyphase filter would be cleaner but is not audible here.
    """
    samples = to_float(np.asarray(samples))
    if src == dst or len(samples) == 0:
        return samples
    if dst < src:
        width = int(round(src / dst))
        if width > 1:
            samples = np.convolve(samples, np.full(width, 1.0 / width, dtype=np.float32), mode="same")
    n_out = int(round(len(samples) * dst / src))
    positions = np.arange(n_out, dtype=np.float64) * (src / dst)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def _decode_frames(raw: bytes, width: int, channels: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        data = ints.astype(np.float32) / 8388608.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    else:  # pragma: no cover - wave rejects other widths first
        raise ValueError(width)
    if channels > 1:
        data = data[: len(data) // channels * channels].reshape(-1, channels).mean(axis=1)
    return data


def _open(path: Path) -> wave.Wave_read:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not a WAV file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{path} is empty (0 bytes); record or export the audio again")
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioError(
            f"{path} is not a WAV file (no RIFF/WAVE header); convert it first, e.g. "
            f"`ffmpeg -i {path.name} -ac 1 -ar 16000 {path.stem}.wav`"
        )
    try:
        return wave.open(str(path), "rb")
    except (wave.Error, EOFError) as exc:
        raise AudioError(
            f"{path}: unreadable WAV ({exc}); only PCM WAV is supported: "
            f"`ffmpeg -i {path.name} -ac 1 -ar 16000 -c:a pcm_s16le {path.stem}-pcm.wav`"
        ) from None


def iter_wav(path: str | Path, chunk_seconds: float = 0.02, rate: int = INPUT_RATE) -> Iterator[np.ndarray]:
    """Stream a WAV as mono float32 chunks at ``rate`` (any channel count, 8/16/24/32-bit PCM, any rate).

    Streams, so a two-hour file never sits in memory at once.
    """
    path = Path(path)
    with _open(path) as wav:
        channels, width, src = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        if src < 4000:
            raise AudioError(f"{path}: a sample rate of {src} Hz is too low for speech; use 16000 Hz or more")
        frames_per_chunk = max(1, int(src * chunk_seconds))
        while True:
            raw = wav.readframes(frames_per_chunk)
            if not raw:
                return
            data = _decode_frames(raw, width, channels)
            yield resample(data, src, rate) if src != rate else data


def read_wav(path: str | Path, rate: int = INPUT_RATE) -> Audio:
    chunks = list(iter_wav(path, chunk_seconds=1.0, rate=rate))
    return Audio(np.concatenate(chunks) if chunks else np.zeros(0, np.float32), rate)


def parse_wav(data: bytes, what: str = "audio") -> Audio:
    """A WAV held in memory (from a TTS server or espeak-ng) at its own rate."""
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            samples = _decode_frames(wav.readframes(wav.getnframes()), wav.getsampwidth(), wav.getnchannels())
            return Audio(samples, wav.getframerate())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{what} is not a PCM WAV ({exc})") from None


def wav_bytes(audio: Audio) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(audio.rate)
        wav.writeframes(audio.int16().tobytes())
    return buf.getvalue()


def write_wav(path: str | Path, audio: Audio) -> None:
    Path(path).write_bytes(wav_bytes(audio))
