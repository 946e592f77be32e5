"""When a person has finished speaking, and when they are interrupting: pure logic.

Fed one VAD probability per frame, the policy says when speech starts, when a
pause begins (the moment to start transcribing speculatively), whether speech
resumed, and when the turn is over. Time is counted in samples, so the same
policy runs on a live microphone, a file streamed at any pace, or a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["TurnPolicy", "PolicyEvent", "Signal", "BargeIn"]


class Signal(str, Enum):
    SPEECH_START = "speech_start"  # enough voiced frames in a row: someone is talking
    PAUSE = "pause"  # first silence after speech: transcribe what we have, speculatively
    RESUME = "resume"  # speech again within the same turn: the speculation is stale
    END = "end"  # silence long enough after enough speech: the turn is theirs no more
    DISCARD = "discard"  # the sound ended but was too short to be speech (a click, a cough)


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    signal: Signal
    sample: int  # stream position the event refers to
    speech_start: int = 0  # first voiced sample of the utterance (with pre-roll)
    speech_end: int = 0  # one past the last voiced sample so far


class TurnPolicy:
    """End-of-turn detection with hysteresis.

    ``silence_ms`` is the end-of-speech wait (default 300 ms, as a person's
    natural gap); ``min_speech_ms`` filters clicks; ``start_ms`` of voiced
    frames in a row are needed before speech counts as started. ``pause_ms``
    of silence make a pause worth transcribing: gaps between words are shorter,
    and each decode started there would be thrown away while it holds the
    recogniser that the decode at the real end then waits for.
    """

    def __init__(
        self,
        *,
        rate: int = 16_000,
        threshold: float = 0.5,
        release: float = 0.35,
        start_ms: int = 64,
        silence_ms: int = 300,
        min_speech_ms: int = 250,
        pre_roll_ms: int = 200,
        pause_ms: int = 0,
    ) -> None:
        if not 0 < release <= threshold < 1:
            raise ValueError("need 0 < release <= threshold < 1")
        if not 0 <= pause_ms < silence_ms:
            raise ValueError("need 0 <= pause_ms < silence_ms")
        self.rate = rate
        self.threshold = threshold
        self.release = release
        self.start_samples = rate * start_ms // 1000
        self.silence_samples = rate * silence_ms // 1000
        self.min_speech_samples = rate * min_speech_ms // 1000
        self.pre_roll = rate * pre_roll_ms // 1000
        self.pause_samples = rate * pause_ms // 1000
        self.reset()

    def reset(self) -> None:
        self.in_speech = False  # inside an utterance (possibly in a pause)
        self._voiced_run = 0  # consecutive voiced samples (before speech counts as started)
        self._run_start = 0
        self._utt_start = 0
        self._last_voiced_end = 0
        self._voiced_total = 0
        self._paused = False
        self._pause_told = False  # a PAUSE was sent for the current silence

    @property
    def speech_samples(self) -> int:
        """Voiced samples in the current utterance (what barge-in thresholds look at)."""
        return self._voiced_total

    def feed(self, prob: float, start: int, length: int) -> list[PolicyEvent]:
        """One frame: its speech probability, first sample index and length."""
        end = start + length
        events: list[PolicyEvent] = []
        voiced = prob >= (self.release if self.in_speech and not self._paused else self.threshold)
        if not self.in_speech:
            if voiced:
                if self._voiced_run == 0:
                    self._run_start = start
                self._voiced_run += length
                if self._voiced_run >= self.start_samples:
                    self.in_speech = True
                    self._utt_start = max(0, self._run_start - self.pre_roll)
                    self._last_voiced_end = end
                    self._voiced_total = self._voiced_run
                    self._paused = False
                    events.append(PolicyEvent(Signal.SPEECH_START, self._run_start, self._utt_start, end))
            else:
                self._voiced_run = 0
            return events
        if voiced:
            self._voiced_total += length
            self._last_voiced_end = end
            if self._paused:
                self._paused = False
                if self._pause_told:
                    self._pause_told = False
                    events.append(PolicyEvent(Signal.RESUME, start, self._utt_start, end))
            return events
        self._paused = True
        if not self._pause_told and end - self._last_voiced_end >= self.pause_samples:
            if self._voiced_total >= self.min_speech_samples:
                self._pause_told = True
                events.append(PolicyEvent(Signal.PAUSE, start, self._utt_start, self._last_voiced_end))
        if end - self._last_voiced_end >= self.silence_samples:
            signal = Signal.END if self._voiced_total >= self.min_speech_samples else Signal.DISCARD
            events.append(PolicyEvent(signal, end, self._utt_start, self._last_voiced_end))
            self.reset()
        return events


@dataclass(frozen=True, slots=True)
class BargeIn:
    """Whether speech heard while the companion talks interrupts it.

    mode "off": never; "on": as soon as speech starts; "min_speech": once the
    person has spoken ``min_ms`` (coughs and "mm-hm" do not cut the reply).
    """

    mode: str = "on"
    min_ms: int = 300

    def should_interrupt(self, speech_samples: int, rate: int = 16_000) -> bool:
        if self.mode == "off":
            return False
        if self.mode == "on":
            return True
        return speech_samples * 1000 >= self.min_ms * rate
