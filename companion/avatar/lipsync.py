"""Mouth opening from the loudness of what is being heard: pure logic, one value per tick."""

from __future__ import annotations

__all__ = ["MouthEnvelope"]


class MouthEnvelope:
    """Level (RMS) -> mouth opening 0..1, opening fast and closing a little slower, like a speaking mouth."""

    def __init__(self, gain: float = 6.0, floor: float = 0.01, attack: float = 0.7, release: float = 0.45) -> None:
        self.gain = gain
        self.floor = floor
        self.attack = attack
        self.release = release
        self.value = 0.0

    def step(self, level: float) -> float:
        if level <= 0.0:  # nothing is playing (speech ended or was cut off): shut at once
            return self.close()
        target = min(1.0, max(0.0, (level - self.floor) * self.gain))
        alpha = self.attack if target > self.value else self.release
        self.value += alpha * (target - self.value)
        if self.value < 0.02 and target == 0.0:
            self.value = 0.0
        return self.value

    def close(self) -> float:
        self.value = 0.0
        return 0.0
