"""Where heard audio comes from: a WAV file streamed like a microphone, the microphone itself, or a queue.

Every source is an async iterator of 16 kHz mono float32 chunks. Adapters
(web UI, Discord) feed a :class:`QueueSource` with whatever they receive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from companion.voice.audio import INPUT_RATE, iter_wav, resample, to_float
from companion.voice.echo import EchoCanceller, FarEndTap, device_time
from companion.voice.playback import AudioDeviceError, _sounddevice

__all__ = ["WavFileSource", "MicrophoneSource", "QueueSource", "feed_realtime"]


class WavFileSource:
    """A WAV file delivered at real-time pace (as a person would speak it) or, with ``realtime=False``, at once."""

    def __init__(self, path: str | Path, *, realtime: bool = True, chunk_ms: int = 20, tail_silence_ms: int = 1500) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.chunk_s = chunk_ms / 1000
        self.tail_silence_ms = tail_silence_ms  # a file may end mid-sentence: close it with silence so the turn ends

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        start = time.perf_counter()
        sent = 0
        chunks = iter_wav(self.path, self.chunk_s)
        tail = int(INPUT_RATE * self.tail_silence_ms / 1000)
        block = int(INPUT_RATE * self.chunk_s)
        silence_blocks = (np.zeros(block, np.float32) for _ in range(tail // block))
        for chunk in _chain(chunks, silence_blocks):
            if self.realtime:
                due = start + sent / INPUT_RATE
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            sent += len(chunk)
            yield chunk


def _chain(*iterables: Any) -> Any:
    for it in iterables:
        yield from it


class QueueSource:
    """Audio pushed by an adapter (web UI microphone, a Discord speaker), at any rate, int16 or float."""

    def __init__(self, max_chunks: int = 500) -> None:
        self._queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue(max_chunks)
        self.dropped = 0
        self.received = 0  # samples at 16 kHz pushed so far (what a page's microphone has sent)

    def feed(self, samples: np.ndarray, rate: int = INPUT_RATE) -> None:
        data = to_float(np.asarray(samples))
        if rate != INPUT_RATE:
            data = resample(data, rate, INPUT_RATE)
        self.received += len(data)
        try:
            self._queue.put_nowait(data)
        except asyncio.QueueFull:  # the pipeline fell behind: drop rather than grow without bound
            self.dropped += 1

    def pending(self) -> int:
        """Chunks pushed but not yet taken by the listener."""
        return self._queue.qsize()

    def close(self) -> None:
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            yield chunk


class MicrophoneSource(QueueSource):
    """The local microphone through sounddevice (its callback thread hands blocks to the loop).

    With ``canceller`` and ``tap`` (echo cancellation), each block has what the speaker played at the moment it
    was captured taken out on the callback thread, before the loop, speech detection or whisper see it.
    """

    def __init__(
        self, *, device: str | int | None = None, block_ms: int = 20, canceller: "EchoCanceller | None" = None,
        tap: "FarEndTap | None" = None,
    ) -> None:
        super().__init__()
        self.device = device
        self.block = INPUT_RATE * block_ms // 1000
        self.canceller = canceller
        self.tap = tap
        self._stream: Any = None

    def cancel_echo(self, near: np.ndarray, captured_at: float) -> np.ndarray:
        """``near`` without what the speaker played while it was captured (from ``captured_at``, monotonic)."""
        if self.canceller is None or self.tap is None:
            return near
        return self.canceller.process(near, self.tap.read(captured_at, len(near)))

    def start(self) -> None:
        sd = _sounddevice()
        loop = asyncio.get_running_loop()
        block_s = self.block / INPUT_RATE

        def callback(indata: np.ndarray, frames: int, info: Any, _status: Any) -> None:
            near = indata[:, 0].copy()
            if self.canceller is not None:
                latency = float(getattr(self._stream, "latency", 0.0) or 0.0)
                near = self.cancel_echo(near, device_time(info, "inputBufferAdcTime", -(latency + block_s)))
            loop.call_soon_threadsafe(self.feed, near)

        try:
            self._stream = sd.InputStream(
                samplerate=INPUT_RATE, channels=1, dtype="float32", blocksize=self.block, device=self.device, callback=callback
            )
            self._stream.start()
        except Exception as exc:  # noqa: BLE001
            raise AudioDeviceError(f"cannot open the microphone ({exc}); check [voice] input_device or `python -m sounddevice`") from None

    async def close_stream(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
        self.close()


async def feed_realtime(source: QueueSource, samples: np.ndarray, block_ms: int = 20) -> None:
    """Push ``samples`` into ``source`` at real-time pace, the way a microphone delivers them (benchmarks, tests)."""
    block = INPUT_RATE * block_ms // 1000
    start = time.perf_counter()
    for i in range(0, len(samples), block):
        source.feed(samples[i : i + block])
        await asyncio.sleep(max(0.0, start + (i + block) / INPUT_RATE - time.perf_counter()))
