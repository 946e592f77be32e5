"""A simulated room for echo tests and bench/echo.py: a speaker, a microphone, reverb, delay, noise and a person.

The room is the sound card: every 20 ms of (virtual) time it plays what the companion's playback buffer holds,
writes it to the far-end tap as the speaker callback does, and makes the microphone's block from it: the sound
through a synthetic room impulse response (exponentially decaying noise after a direct path), ``delay_s`` later,
scaled by ``gain``, plus a person's voice where one was scheduled and a little noise. The block goes through the
product's canceller (``MicrophoneSource.cancel_echo``) into the microphone queue the voice pipeline listens on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from companion.voice.audio import INPUT_RATE
from companion.voice.echo import EchoCanceller, FarEndTap
from companion.voice.sources import MicrophoneSource

BLOCK = INPUT_RATE // 50  # 20 ms
OUTPUT_LATENCY_S = 0.03  # what a sound device reports between the callback and the converter


def impulse_response(seed: int = 0, t60: float = 0.3, length_s: float = 0.25) -> np.ndarray:
    """A room's reverb: a direct path, then decaying noise (60 dB down after ``t60`` s), unit energy."""
    rng = np.random.default_rng(seed)
    n = int(INPUT_RATE * length_s)
    t = np.arange(n) / INPUT_RATE
    h = rng.standard_normal(n) * np.exp(-6.9 * t / t60) * 0.3
    h[0] = 1.0
    return (h / np.sqrt(np.sum(h**2))).astype(np.float32)


def through_room(far: np.ndarray, *, delay_s: float, gain: float, seed: int = 0) -> np.ndarray:
    """What a microphone hears of ``far`` (16 kHz), offline: reverb, delay, gain; same length as ``far``."""
    echo = np.convolve(far, impulse_response(seed))[: len(far)] * gain
    shift = int(delay_s * INPUT_RATE)
    return np.concatenate([np.zeros(shift, np.float32), echo])[: len(far)].astype(np.float32)


def onset(samples: np.ndarray, level: float = 0.02) -> int:
    """The first voiced sample of a recording (espeak-ng pads its speech with silence)."""
    loud = np.flatnonzero(np.abs(samples) > level)
    return int(loud[0]) if len(loud) else 0


@dataclass
class Room:
    buffer: object  # the PlaybackBuffer the companion speaks into (16 kHz)
    mic: MicrophoneSource
    clock: object  # a VirtualClock
    delay_s: float = 0.12
    gain: float = 0.6
    noise: float = 0.002
    seed: int = 0
    voices: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (start sample, 16 kHz speech) of people
    heard: list[np.ndarray] = field(default_factory=list)  # what the pipeline got (after cancelling)
    near: list[np.ndarray] = field(default_factory=list)  # what the microphone picked up
    played: list[np.ndarray] = field(default_factory=list)  # what the speaker played

    def __post_init__(self) -> None:
        self.h = impulse_response(self.seed)
        self._tail = np.zeros(len(self.h) - 1, np.float32)
        self._line = np.zeros(int(self.delay_s * INPUT_RATE), np.float32)
        self._rng = np.random.default_rng(self.seed + 1)
        self.t = 0  # samples since the room opened

    @classmethod
    def with_canceller(cls, buffer: object, clock: object, *, cancel: bool = True, **kw: object) -> "Room":
        mic = MicrophoneSource(canceller=EchoCanceller() if cancel else None, tap=FarEndTap() if cancel else None)
        return cls(buffer, mic, clock, **kw)  # type: ignore[arg-type]

    def speak(self, samples: np.ndarray, after_s: float = 0.0) -> int:
        """A person says ``samples`` from ``after_s`` seconds from now; returns the sample their voice starts at."""
        start = self.t + int(after_s * INPUT_RATE)
        self.voices.append((start, samples.astype(np.float32)))
        return start + onset(samples)

    def set_delay(self, delay_s: float) -> None:
        """The echo path changes length (the speaker moved, a device restarted its buffers)."""
        self._line = np.zeros(int(delay_s * INPUT_RATE), np.float32)
        self.delay_s = delay_s

    def _echo(self, played: np.ndarray) -> np.ndarray:
        full = np.convolve(played, self.h)
        full[: len(self._tail)] += self._tail
        out, self._tail = full[: len(played)], full[len(played) :].astype(np.float32)
        line = np.concatenate([self._line, out * self.gain])
        self._line = line[len(played) :] if len(self._line) else np.zeros(0, np.float32)
        return line[: len(played)].astype(np.float32)

    def _people(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        for start, voice in self.voices:
            lo, hi = max(start, self.t), min(start + len(voice), self.t + n)
            if lo < hi:
                out[lo - self.t : hi - self.t] += voice[lo - start : hi - start]
        return out

    async def _wait_for_synthesis(self) -> None:
        """Virtual time runs as fast as the CPU allows, a sound card in real time, and piper writes a sentence in a
        tenth of the time it lasts: where the sentence being written has not reached the buffer yet, the room waits
        for it (up to 1 s of real time), or a slow machine would hear gaps in her voice that no real one does."""
        for _ in range(200):
            segments = self.buffer._segments  # type: ignore[attr-defined]  # noqa: SLF001
            writing = any(not s.final for s in segments)
            if not writing or self.buffer.queued_seconds() * INPUT_RATE >= BLOCK:  # type: ignore[attr-defined]
                return
            await asyncio.sleep(0.005)  # real time on purpose: piper writes on its own thread, in real time

    async def run_for(self, seconds: float) -> None:
        """Play, record and cancel for ``seconds`` of virtual time, one 20 ms block after another."""
        for _ in range(int(round(seconds * INPUT_RATE / BLOCK))):
            await self.tick()

    async def tick(self) -> None:
        await self._wait_for_synthesis()
        now = float(self.clock())  # type: ignore[operator]
        played = self.buffer.read(BLOCK)  # type: ignore[attr-defined]
        if self.mic.tap is not None:
            self.mic.tap.played(played, INPUT_RATE, now + OUTPUT_LATENCY_S)
        near = self._echo(played) + self._people(BLOCK) + self._rng.standard_normal(BLOCK).astype(np.float32) * self.noise
        clean = self.mic.cancel_echo(near, now + OUTPUT_LATENCY_S)
        self.played.append(played)
        self.near.append(near)
        self.heard.append(clean)
        self.mic.feed(clean)
        self.t += BLOCK
        while self.mic.pending():
            await asyncio.sleep(0)
        await self.clock.advance(BLOCK / INPUT_RATE)  # type: ignore[attr-defined]
