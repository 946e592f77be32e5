"""Whose turn it is: the decisions of a spoken conversation, as pure logic.

:class:`TurnPolicy` says when speech starts, pauses, resumes and ends.
:class:`TurnTaking` adds what the companion does about it while it may itself
be thinking or talking:

- speech starts while a reply is being prepared but nothing was heard yet:
  the person only paused, so the reply is taken back and everything is
  answered together (continuation merge);
- speech starts while the companion is audible: barge-in, at once or after
  ``BargeIn.min_ms`` of speech;
- a pause: transcribe what was said so far, speculatively; speech resumes:
  that speculation is stale;
- the end of an utterance: answer it, unless the person is already talking
  again (then it is carried into the next answer) or it held no words.

It never touches audio, models or tasks: :class:`VoicePipeline` feeds it VAD
probabilities and carries out the :class:`Step` list it returns, so every
case is tested without an event loop (``tests/voice/test_turntaking.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from companion.voice.policy import BargeIn, PolicyEvent, Signal, TurnPolicy

__all__ = ["Act", "ReplyState", "Step", "TurnTaking", "Verdict", "meaningful"]


class ReplyState(str, Enum):
    NONE = "none"  # the companion is silent and not thinking
    PREPARING = "preparing"  # a reply is being written, nothing heard yet
    AUDIBLE = "audible"  # the listener is hearing the companion


class Act(str, Enum):
    SPEECH_STARTED = "speech_started"  # tell the world (avatar, captions)
    TAKE_BACK = "take_back"  # drop the reply in preparation: the person went on talking
    BARGE_IN = "barge_in"  # stop the companion talking
    TRANSCRIBE = "transcribe"  # speculatively transcribe up to ``sample``
    CANCEL_SPECULATION = "cancel_speculation"
    END_OF_UTTERANCE = "end_of_utterance"  # transcribe the rest and decide (``event`` says where it ended)
    FORGET_UTTERANCE = "forget_utterance"  # too short to be speech


@dataclass(frozen=True, slots=True)
class Step:
    act: Act
    event: PolicyEvent | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a finished utterance's transcript."""

    answer: str | None  # the text to answer now (with anything carried), or None
    carried: bool = False  # kept for the next answer: the person is already speaking again
    empty: bool = False  # sound without words (noise, whisper's stock phrases)


@dataclass
class TurnTaking:
    policy: TurnPolicy = field(default_factory=TurnPolicy)
    barge_in: BargeIn = field(default_factory=BargeIn)
    utterances: int = 0  # utterances started so far
    _barge_pending: bool = False
    _carry: list[str] = field(default_factory=list)
    _took_back: bool = False

    def frame(self, prob: float, start: int, length: int, reply: ReplyState) -> list[Step]:
        """One VAD frame, and what the companion is doing right now."""
        steps: list[Step] = []
        for event in self.policy.feed(prob, start, length):
            steps += self._on_event(event, reply)
        if self._barge_pending and reply is ReplyState.AUDIBLE and self.barge_in.should_interrupt(self.policy.speech_samples):
            self._barge_pending = False
            steps.append(Step(Act.BARGE_IN))
        return steps

    def _on_event(self, event: PolicyEvent, reply: ReplyState) -> list[Step]:
        signal = event.signal
        if signal is Signal.SPEECH_START:
            self.utterances += 1
            steps = [Step(Act.SPEECH_STARTED, event)]
            if reply is ReplyState.PREPARING:
                # They paused, we started thinking, they went on: nothing was said yet, so take it all back.
                self._took_back = True
                steps.append(Step(Act.TAKE_BACK, event))
            elif reply is ReplyState.AUDIBLE and self.barge_in.mode != "off":
                self._barge_pending = True
            return steps
        if signal is Signal.PAUSE:
            return [Step(Act.TRANSCRIBE, event)]
        if signal is Signal.RESUME:
            return [Step(Act.CANCEL_SPECULATION, event)]
        self._barge_pending = False
        if signal is Signal.END:
            return [Step(Act.END_OF_UTTERANCE, event)]
        return [Step(Act.FORGET_UTTERANCE, event)]

    def took_back(self, transcript: str) -> None:
        """A reply was taken back before a word was heard: its question is answered with the next one."""
        self._carry.insert(0, transcript)

    def drop_carry(self) -> None:
        """What was carried is in the transcript already (the pipeline decoded it again with what followed)."""
        self._carry = []

    def interrupts(self) -> bool:
        """An utterance ended while a reply still runs: does the reply stop (else it finishes first)?"""
        took_back, self._took_back = self._took_back, False
        return self.barge_in.mode != "off" or took_back

    def verdict(self, transcript: str, utterance: int) -> Verdict:
        """Utterance number ``utterance`` ended with ``transcript`` (and any reply before it is over)."""
        if self.utterances > utterance and meaningful(transcript):
            self._carry.append(transcript)  # they are already speaking again: answer everything together
            return Verdict(None, carried=True)
        if self._carry:
            transcript = " ".join([*self._carry, transcript]).strip()
            self._carry = []
        if not meaningful(transcript):
            return Verdict(None, empty=True)
        return Verdict(transcript)


def meaningful(text: str) -> bool:
    """Whisper's stock hallucinations on noise ("Thank you.", "you") are not a turn."""
    cleaned = "".join(ch for ch in text.lower() if ch.isalnum() or ch == " ").strip()
    return bool(cleaned) and cleaned not in {"you", "thanks for watching", "uh", "um", "hmm"}
