"""The end-of-turn and barge-in policies, as pure logic over VAD probabilities."""

import pytest

from companion.voice.policy import BargeIn, Signal, TurnPolicy

FRAME = 512  # 32 ms at 16 kHz


def run(policy: TurnPolicy, probs: list[float]) -> list[tuple[Signal, int]]:
    out = []
    for i, p in enumerate(probs):
        out += [(e.signal, i) for e in policy.feed(p, i * FRAME, FRAME)]
    return out


def test_default_end_of_speech_wait_is_300_ms_or_less():
    """A turn ends after at most 300 ms of silence by default."""
    policy = TurnPolicy()
    events = run(policy, [0.9] * 20 + [0.0] * 20)
    end = next(i for s, i in events if s is Signal.END)
    silent_ms = (end - 20 + 1) * FRAME / 16
    assert silent_ms <= 300 + 32


def test_pause_comes_first_then_end_and_resume_cancels_the_end():
    """The first silent frame signals a pause; speech before the wait ends resumes the same turn."""
    policy = TurnPolicy(silence_ms=300)
    events = run(policy, [0.9] * 20 + [0.0] * 4 + [0.9] * 10 + [0.0] * 12)
    signals = [s for s, _ in events]
    assert signals == [Signal.SPEECH_START, Signal.PAUSE, Signal.RESUME, Signal.PAUSE, Signal.END]


def test_a_gap_between_words_is_no_pause_worth_transcribing():
    """With pause_ms, a one-frame gap between words sends nothing; a longer silence sends one pause (after pause_ms,
    pointing at the last voiced sample), and speech after it a resume."""
    policy = TurnPolicy(silence_ms=300, pause_ms=64)
    events = []
    probs = [0.9] * 20 + [0.0] + [0.9] * 10 + [0.0] * 4 + [0.9] * 10 + [0.0] * 12
    for i, p in enumerate(probs):
        events += [(e, i) for e in policy.feed(p, i * FRAME, FRAME)]
    assert [e.signal for e, _ in events] == [Signal.SPEECH_START, Signal.PAUSE, Signal.RESUME, Signal.PAUSE, Signal.END]
    pause, frame = events[1]
    assert frame == 32 and pause.speech_end == 31 * FRAME  # the second silent frame of the 4-frame gap
    with pytest.raises(ValueError, match="pause_ms < silence_ms"):
        TurnPolicy(silence_ms=300, pause_ms=300)  # a pause as long as the end-of-speech wait would never be one


def test_clicks_are_not_speech_and_short_sounds_are_discarded():
    """A single voiced frame never starts speech; a sound shorter than min_speech_ms is discarded."""
    policy = TurnPolicy(min_speech_ms=250)
    assert run(policy, [0.9] + [0.0] * 20) == []
    events = run(TurnPolicy(min_speech_ms=250), [0.9] * 4 + [0.0] * 20)
    assert [s for s, _ in events] == [Signal.SPEECH_START, Signal.DISCARD]


def test_end_event_reports_the_last_voiced_sample():
    """END carries where speech really stopped (for voice-to-voice timing), not where the wait ended."""
    events = []
    policy = TurnPolicy()
    for i, p in enumerate([0.9] * 20 + [0.0] * 15):
        events += policy.feed(p, i * FRAME, FRAME)
    end = next(e for e in events if e.signal is Signal.END)
    assert end.speech_end == 20 * FRAME
    assert end.sample > end.speech_end


def test_barge_in_modes():
    """off never interrupts, on always does, min_speech only after enough speech."""
    assert not BargeIn("off").should_interrupt(10**6)
    assert BargeIn("on").should_interrupt(0)
    gate = BargeIn("min_speech", min_ms=300)
    assert not gate.should_interrupt(16_000 * 200 // 1000)
    assert gate.should_interrupt(16_000 * 300 // 1000)
