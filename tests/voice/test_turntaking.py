"""Turn-taking decisions as pure logic: no audio, no models, no event loop."""

from __future__ import annotations

from companion.voice.policy import BargeIn
from companion.voice.turntaking import Act, ReplyState, TurnTaking

FRAME = 512  # 32 ms at 16 kHz, Silero's frame


class Timeline:
    """Feeds a TurnTaking frame by frame and keeps every act it asked for."""

    def __init__(self, taking: TurnTaking) -> None:
        self.taking = taking
        self.position = 0
        self.acts: list[Act] = []

    def run(self, prob: float, ms: int, reply: ReplyState = ReplyState.NONE) -> list[Act]:
        acts: list[Act] = []
        for _ in range(ms * 16 // FRAME):
            acts += [step.act for step in self.taking.frame(prob, self.position, FRAME, reply)]
            self.position += FRAME
        self.acts += acts
        return acts


def test_an_utterance_starts_pauses_and_ends():
    """Speech, a pause (transcribe speculatively), then enough silence: one utterance, ended."""
    t = Timeline(TurnTaking())
    assert t.run(0.9, 600) == [Act.SPEECH_STARTED]
    assert t.run(0.05, 500) == [Act.TRANSCRIBE, Act.END_OF_UTTERANCE]
    assert t.taking.utterances == 1


def test_talking_on_after_a_pause_makes_the_speculation_stale():
    """A short pause then more words: the speculative transcript is cancelled and no turn ends."""
    t = Timeline(TurnTaking())
    t.run(0.9, 600)
    assert t.run(0.05, 160) == [Act.TRANSCRIBE]
    assert t.run(0.9, 300) == [Act.CANCEL_SPECULATION]
    assert Act.END_OF_UTTERANCE not in t.acts


def test_a_click_is_forgotten():
    """Sound too short to be speech ends as nothing."""
    t = Timeline(TurnTaking())
    t.run(0.9, 100)
    assert t.run(0.05, 400) == [Act.FORGET_UTTERANCE]


def test_speaking_while_a_reply_is_only_being_prepared_takes_it_back():
    """Nothing was heard yet: the reply is taken back instead of barged into, and both utterances are answered together."""
    taking = TurnTaking(barge_in=BargeIn("on"))
    t = Timeline(taking)
    t.run(0.9, 600)
    t.run(0.05, 400)
    first = taking.utterances
    acts = t.run(0.9, 600, ReplyState.PREPARING)
    assert Act.TAKE_BACK in acts and Act.BARGE_IN not in acts
    taking.took_back("Will it rain in London")
    assert taking.interrupts()  # the taken-back reply must stop
    t.run(0.05, 400)
    verdict = taking.verdict("tomorrow morning?", taking.utterances)
    assert verdict.answer == "Will it rain in London tomorrow morning?"
    assert first == 1 and taking.utterances == 2


def test_barge_in_waits_for_enough_speech_in_min_speech_mode():
    """With min_speech, a cough does not cut the companion off; 300 ms of speech does."""
    t = Timeline(TurnTaking(barge_in=BargeIn("min_speech", min_ms=300)))
    early = t.run(0.9, 160, ReplyState.AUDIBLE)
    assert Act.SPEECH_STARTED in early and Act.BARGE_IN not in early
    assert t.run(0.9, 300, ReplyState.AUDIBLE).count(Act.BARGE_IN) == 1


def test_barge_in_mode_on_interrupts_at_once_and_off_never():
    """Mode on stops the companion as soon as speech starts; mode off lets it finish."""
    on = Timeline(TurnTaking(barge_in=BargeIn("on")))
    assert on.run(0.9, 100, ReplyState.AUDIBLE) == [Act.SPEECH_STARTED, Act.BARGE_IN]
    off_taking = TurnTaking(barge_in=BargeIn("off"))
    off = Timeline(off_taking)
    off.run(0.9, 1000, ReplyState.AUDIBLE)
    assert Act.BARGE_IN not in off.acts
    assert not off_taking.interrupts()  # the running reply finishes before the next one


def test_words_said_while_already_talking_again_are_carried_into_the_next_answer():
    """An utterance whose speaker has started the next one is not answered alone."""
    taking = TurnTaking()
    t = Timeline(taking)
    t.run(0.9, 600)
    t.run(0.05, 400)
    ended = taking.utterances
    t.run(0.9, 300)  # speaking again before the first transcript came back
    carried = taking.verdict("First part.", ended)
    assert carried.answer is None and carried.carried
    assert taking.verdict("Second part.", taking.utterances).answer == "First part. Second part."


def test_noise_transcribed_as_stock_phrases_is_not_a_turn():
    """Whisper's "you" on noise is reported empty, not answered."""
    taking = TurnTaking()
    verdict = taking.verdict("You.", taking.utterances)
    assert verdict.answer is None and verdict.empty
