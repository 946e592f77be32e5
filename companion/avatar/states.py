"""What the avatar shows, from what happens (pure): idle, listening, thinking, speaking.

One tracker for every avatar (VTube Studio and the built-in web avatar), fed
the same events: a person starts speaking -> listening; a reply starts ->
thinking, until its first audio is heard -> speaking; the audio falls silent
with no reply running -> idle. Times are passed in, so it is tested without a
clock or an event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AvatarStates", "SPEAKING_LEVEL", "SILENCE_S"]

SPEAKING_LEVEL = 0.01  # RMS above which the reply is audible
SILENCE_S = 0.3  # silence that ends "speaking" (pauses between sentences are shorter)


@dataclass
class AvatarStates:
    state: str = "idle"
    replying: bool = False
    last_sound: float = -1e9

    def speech_started(self) -> str:
        if self.state != "speaking":
            self.state = "listening"
        return self.state

    def turn_started(self) -> str:
        self.replying = True
        if self.state != "speaking":
            self.state = "thinking"
        return self.state

    def turn_ended(self, now: float) -> str:
        self.replying = False
        if self.state != "speaking" or now - self.last_sound > SILENCE_S:
            self.state = "idle"
        return self.state

    def level(self, value: float, now: float) -> str:
        """The playback level now: sound makes it speaking; silence after the reply makes it idle."""
        if value > SPEAKING_LEVEL:
            self.last_sound = now
            self.state = "speaking"
        elif self.state == "speaking" and now - self.last_sound > SILENCE_S:
            self.state = "thinking" if self.replying else "idle"
        return self.state
