"""Speech into a Discord voice channel: 20 ms frames of 48 kHz stereo 16-bit PCM from the playback buffer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from companion.voice.playback import PlaybackBuffer

__all__ = ["FRAME_SAMPLES", "FRAME_BYTES", "BufferAudioSource", "VoiceBuffer"]

RATE = 48_000
FRAME_SAMPLES = RATE // 50  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2 * 2  # stereo, int16


def stereo_frame(mono: np.ndarray) -> bytes:
    pcm = (np.clip(mono, -1.0, 1.0) * 32767).astype("<i2")
    return np.repeat(pcm, 2).tobytes()  # L R L R ...


try:
    import discord

    _Base = discord.AudioSource
except ImportError:  # the adapter is optional; frames can still be made and tested
    _Base = object  # type: ignore[assignment,misc]


class BufferAudioSource(_Base):
    """discord.py pulls a frame every 20 ms from its player thread; we hand it what the buffer holds.

    Between sentences the buffer may be briefly empty: silence frames keep the
    stream going; once ``finish()`` is called and everything is played, the
    source ends (an empty read), which tells discord.py the reply is over.
    """

    def __init__(self, buffer: PlaybackBuffer, linger_frames: int = 0) -> None:
        if buffer.rate != RATE:
            raise ValueError("the Discord audio buffer must run at 48 kHz")
        self.buffer = buffer
        self._finished = False
        # With linger_frames, the source also ends after that many frames of an empty buffer:
        # the bot stops "speaking" between replies, and the next push starts a new source.
        self.linger_frames = linger_frames
        self._idle = 0

    def finish(self) -> None:
        self._finished = True

    def is_opus(self) -> bool:
        return False

    def read(self) -> bytes:
        if self._finished and not self.buffer.busy:
            return b""
        if self.linger_frames:
            self._idle = 0 if self.buffer.busy else self._idle + 1
            if self._idle > self.linger_frames:
                return b""
        return stereo_frame(self.buffer.read(FRAME_SAMPLES))


class VoiceBuffer(PlaybackBuffer):
    """The guild's playback buffer; pushing audio makes sure something plays it (``on_push``).

    Replies spoken from text and replies of the listening pipelines both push
    here; neither has to know whether Discord's player is running.
    """

    def __init__(self, rate: int, level: object | None = None) -> None:
        super().__init__(rate, level=level)  # type: ignore[arg-type]
        self.on_push: Callable[[], None] = lambda: None

    def push(self, index: int, text: str, samples: np.ndarray, src_rate: int, *, final: bool = False) -> None:
        super().push(index, text, samples, src_rate, final=final)
        self.on_push()
