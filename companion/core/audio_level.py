"""The loudness of what is being played right now, for lip sync.

The playback buffer records the level of every block at the moment an output
takes it (i.e. when it is heard), in 10 ms steps; the avatar reads the level
"now". Audio synthesised ahead of time but not yet played never moves the mouth.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

__all__ = ["AudioLevel"]

STEP = 0.01  # seconds per level point


class AudioLevel:
    def __init__(self, keep_seconds: float = 3.0, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock  # a test's VirtualClock, or perf_counter
        self._points: deque[tuple[float, float]] = deque(maxlen=int(keep_seconds / STEP))
        self._lock = threading.Lock()

    def record(self, samples: np.ndarray, rate: int, start: float | None = None) -> None:
        """``samples`` start playing at ``start`` (perf_counter; default now)."""
        start = self.clock() if start is None else start
        step = max(1, int(rate * STEP))
        points = []
        for i in range(0, len(samples), step):
            piece = samples[i : i + step]
            points.append((start + i / rate, float(np.sqrt(np.mean(piece * piece))) if len(piece) else 0.0))
        with self._lock:
            self._points.extend(points)

    def at(self, when: float | None = None) -> float:
        """RMS level playing at ``when``; 0 when nothing played in the last 50 ms."""
        when = self.clock() if when is None else when
        with self._lock:
            for t, rms in reversed(self._points):
                if t <= when:
                    return rms if when - t <= 0.05 else 0.0
        return 0.0

    def last_sound(self) -> float:
        """perf_counter of the latest point with sound (0 if none)."""
        with self._lock:
            for t, rms in reversed(self._points):
                if rms > 1e-3:
                    return t
        return 0.0
