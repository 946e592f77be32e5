"""What the companion is saying right now: a buffer of spoken sentences and the outputs that drain it.

The buffer knows which sentence each sample belongs to, so when a person
barges in we can say exactly which words they heard: that prefix, and only
that, goes into the conversation history.

Outputs pull from the buffer at their own pace: the sound card's callback
(:class:`SpeakerOutput`), or a clock (:class:`PacedOutput`) that drives a WAV
recording, the web UI or Discord at real time (or as fast as possible).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from companion.core.audio_level import AudioLevel
from companion.voice.audio import resample
from companion.voice.echo import device_time
from companion.voice.errors import VoiceError

log = logging.getLogger(__name__)

__all__ = ["PlaybackBuffer", "PacedOutput", "SpeakerOutput", "AudioDeviceError", "spoken_prefix"]


class AudioDeviceError(VoiceError):
    """No usable microphone or speaker; the message says what to do."""


@dataclass(slots=True)
class _Segment:
    index: int  # sentence index in the turn
    text: str  # what the segment says (the sentence's speech text)
    samples: np.ndarray  # float32 at the buffer's rate
    total: int  # samples of the whole sentence queued so far
    final: bool  # no more audio will come for this sentence
    read: int = 0


def spoken_prefix(text: str, fraction: float) -> str:
    """The words of ``text`` a listener heard when ``fraction`` of its audio played (by word length)."""
    words = text.split()
    if fraction >= 0.999 or not words:
        return text if fraction >= 0.999 else ""
    budget = fraction * sum(len(w) + 1 for w in words)
    heard, used = [], 0.0
    for word in words:
        used += len(word) + 1
        if used > budget + 1:  # a word counts once most of it was heard
            break
        heard.append(word)
    return " ".join(heard)


class PlaybackBuffer:
    """Thread-safe queue of sentence audio at one sample rate, read by an output."""

    def __init__(self, rate: int, level: "AudioLevel | None" = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.rate = rate
        self.clock = clock
        self.level = level  # lip sync reads the loudness of what is heard
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._played: dict[int, list[int]] = {}  # sentence index -> [samples played, samples queued]
        self._texts: dict[int, str] = {}
        self._finals: set[int] = set()
        self.samples_played = 0
        self.first_play_at: float | None = None  # perf_counter when the first non-empty read happened
        self._drained = threading.Event()
        self._drained.set()

    # -- producer side (TTS) ----------------------------------------------------

    def push(self, index: int, text: str, samples: np.ndarray, src_rate: int, *, final: bool = False) -> None:
        data = resample(samples, src_rate, self.rate) if src_rate != self.rate else samples.astype(np.float32, copy=False)
        with self._lock:
            self._texts[index] = text
            counts = self._played.setdefault(index, [0, 0])
            counts[1] += len(data)
            if final:
                self._finals.add(index)
            if len(data):
                self._segments.append(_Segment(index, text, data, counts[1], final))
                self._drained.clear()

    def end_sentence(self, index: int) -> None:
        with self._lock:
            self._finals.add(index)

    # -- the AudioOutput protocol (speech.py): the speaker, the browser and Discord all play a buffer --

    def write(self, index: int, text: str, samples: np.ndarray, rate: int) -> None:
        self.push(index, text, samples, rate)

    def begin(self) -> None:
        self.reset()

    def heard(self) -> str:
        return self.spoken_text()

    async def wait_for_playout(self) -> None:
        await self.wait_drained()

    # -- consumer side (output) ------------------------------------------------

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` samples (zero-padded to ``n``): what the output plays next."""
        out = np.zeros(n, dtype=np.float32)
        filled = 0
        with self._lock:
            while filled < n and self._segments:
                seg = self._segments[0]
                take = min(n - filled, len(seg.samples) - seg.read)
                out[filled : filled + take] = seg.samples[seg.read : seg.read + take]
                seg.read += take
                filled += take
                self._played[seg.index][0] += take
                if seg.read >= len(seg.samples):
                    self._segments.popleft()
            if filled and self.first_play_at is None:
                self.first_play_at = self.clock()
            if filled and self.level is not None:
                self.level.record(out[:filled], self.rate, self.level.clock())
            self.samples_played += filled
            if not self._segments:
                self._drained.set()
        return out  # always n samples (zero-padded): outputs want fixed blocks

    def read_available(self, n: int) -> np.ndarray:
        """Up to ``n`` samples, without padding (an empty array when nothing is queued)."""
        with self._lock:
            queued = sum(len(s.samples) - s.read for s in self._segments)
        return self.read(min(n, queued)) if queued else np.zeros(0, dtype=np.float32)

    @property
    def busy(self) -> bool:
        return not self._drained.is_set()

    def queued_seconds(self) -> float:
        with self._lock:
            return sum(len(s.samples) - s.read for s in self._segments) / self.rate

    async def wait_drained(self, poll: float = 0.01) -> None:
        while self.busy:
            await asyncio.sleep(poll)

    def spoken_text(self) -> str:
        """The words actually played so far, sentence by sentence."""
        with self._lock:
            parts = []
            for index in sorted(self._played):
                played, queued = self._played[index]
                if played <= 0 or queued <= 0:
                    continue
                whole = index in self._finals and played >= queued
                parts.append(self._texts[index] if whole else spoken_prefix(self._texts[index], played / queued))
            return " ".join(p for p in parts if p)

    def clear(self) -> str:
        """Drop everything not yet played (barge-in); returns the text that was heard."""
        with self._lock:
            self._segments.clear()
            self._drained.set()
        return self.spoken_text()

    def reset(self) -> None:
        """Start a new turn's bookkeeping (after the previous one ended)."""
        with self._lock:
            self._segments.clear()
            self._played.clear()
            self._texts.clear()
            self._finals.clear()
            self.first_play_at = None
            self._drained.set()


class PacedOutput:
    """Drains a buffer in blocks on a clock: real time (web, Discord, benchmarks) or as fast as possible (tests).

    Every block that held audio goes to ``on_audio``; the silent gaps between
    sentences are not sent, but they are kept in :attr:`recording` when asked.
    """

    def __init__(
        self,
        buffer: PlaybackBuffer,
        *,
        block_ms: int = 20,
        realtime: bool = True,
        on_audio: Callable[[np.ndarray], Any] | None = None,
        record: bool = False,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.buffer = buffer
        self.clock, self.sleep = clock, sleep  # a test's VirtualClock, or real time
        self.block = buffer.rate * block_ms // 1000
        self.realtime = realtime
        self.on_audio = on_audio
        self.recording: list[np.ndarray] | None = [] if record else None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="voice-output")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        period = self.block / self.buffer.rate
        next_at = self.clock()
        while True:
            if not self.buffer.busy:
                await self.sleep(0.005)
                next_at = self.clock()
                continue
            data = self.buffer.read_available(self.block)
            if len(data):
                if self.recording is not None:
                    self.recording.append(data)
                if self.on_audio is not None:
                    result = self.on_audio(data)
                    if asyncio.iscoroutine(result):
                        await result
            if self.realtime:
                next_at += len(data) / self.buffer.rate if len(data) else period
                await self.sleep(max(0.0, next_at - self.clock()))
            else:
                await asyncio.sleep(0)


class SpeakerOutput:
    """The local speaker through sounddevice: its callback reads the buffer.

    With a ``tap`` (echo cancellation), every block played is also written there, stamped with the time the sound
    device says it reaches the converter: the microphone's canceller takes exactly that back out.
    """

    def __init__(self, buffer: PlaybackBuffer, *, device: str | int | None = None, block_ms: int = 20, tap: Any = None) -> None:
        self.buffer = buffer
        self.device = device
        self.block = buffer.rate * block_ms // 1000
        self.tap = tap
        self._stream: Any = None

    def start(self) -> None:
        sd = _sounddevice()
        try:
            self._stream = sd.OutputStream(
                samplerate=self.buffer.rate, channels=1, dtype="float32", blocksize=self.block,
                device=self.device, callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:  # noqa: BLE001 - PortAudioError and friends
            raise AudioDeviceError(f"cannot open the speaker ({exc}); check [voice] output_device or `python -m sounddevice`") from None

    def _callback(self, outdata: np.ndarray, frames: int, info: Any, _status: Any) -> None:
        outdata[:, 0] = self.buffer.read(frames)
        if self.tap is not None:
            latency = float(getattr(self._stream, "latency", 0.0) or 0.0)
            self.tap.played(outdata[:, 0], self.buffer.rate, device_time(info, "outputBufferDacTime", latency))

    def device_name(self) -> str:
        """The output device's name (``echo_cancel = "auto"`` looks for headphones in it); "" when unknown."""
        try:
            sd = _sounddevice()
            return str(sd.query_devices(self.device, "output").get("name", ""))
        except Exception:  # noqa: BLE001 - a name for a heuristic, never a failure
            return ""

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None


def _sounddevice() -> Any:
    try:
        import sounddevice as sd
    except ImportError:
        raise AudioDeviceError("sounddevice is not installed: pip install 'companion[voice]'") from None
    except OSError as exc:  # PortAudio library missing
        raise AudioDeviceError(f"PortAudio is missing ({exc}): sudo apt install libportaudio2") from None
    try:
        devices = sd.query_devices()
    except Exception as exc:  # noqa: BLE001
        raise AudioDeviceError(f"no audio devices ({exc}); plug in a microphone/speaker or use `companion voice --input/--output`") from None
    if len(devices) == 0:
        raise AudioDeviceError("no audio devices found; plug in a microphone/speaker or use `companion voice --input/--output` with WAV files")
    return sd
