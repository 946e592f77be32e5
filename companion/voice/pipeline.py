"""The voice loop: heard audio -> VAD -> turn policy -> STT -> engine -> TTS -> playback, with barge-in.

Stages overlap wherever they can:
- transcription starts at the first silence after speech, while the
  end-of-speech wait is still running (and is thrown away if speech resumes);
- long speech is transcribed stretch by stretch at its pauses while the person
  is still talking, so at the end only the last stretch remains;
- the reply is spoken sentence by sentence: sentence n+1 is synthesised while
  sentence n plays.

All audio positions are sample counts of the input stream; wall-clock times
come from when each chunk arrived, so timings are the ones a speaking person
experiences whether the source is a microphone or a file played at real time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from companion.core.speech import Voice
from companion.runtime.events import BargedIn, SpeechStarted, Transcript, VoiceTimings
from companion.text.chunking import Sentence
from companion.voice.audio import INPUT_RATE
from companion.voice.playback import PlaybackBuffer
from companion.voice.policy import BargeIn, PolicyEvent, TurnPolicy
from companion.voice.stt.base import STT, STTError
from companion.voice.tts.base import TTS
from companion.voice.turntaking import Act, ReplyState, Step, TurnTaking
from companion.voice.vad import VAD, FrameSplitter

if TYPE_CHECKING:
    from companion.core.engine import Companion
    from companion.core.reply import Reply
    from companion.core.turn import TurnResult

log = logging.getLogger(__name__)

__all__ = ["VoicePipeline", "VoiceTurn", "InputRing"]


# Silence after the last voiced sample given to whisper: cut right at the speech detector's end, it drops or
# mishears the last sound of a word ("Mika," became "me, K-").
POST_ROLL = INPUT_RATE // 5

class InputRing:
    """Recent input audio with the wall-clock time each chunk arrived."""

    def __init__(self, rate: int = INPUT_RATE, keep_seconds: float = 120.0, clock: Callable[[], float] = time.perf_counter) -> None:
        self.rate = rate
        self.clock = clock
        self.keep = int(keep_seconds * rate)
        self._chunks: deque[tuple[int, np.ndarray, float]] = deque()  # (first sample, samples, arrival)
        self.end = 0  # samples received so far

    def append(self, samples: np.ndarray, arrived: float) -> None:
        self._chunks.append((self.end, samples, arrived))
        self.end += len(samples)

    def trim(self, keep_from: int) -> None:
        keep_from = max(keep_from, self.end - self.keep)
        while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) <= keep_from:
            self._chunks.popleft()

    def slice(self, start: int, stop: int) -> np.ndarray:
        parts = []
        for first, data, _ in self._chunks:
            last = first + len(data)
            if last <= start or first >= stop:
                continue
            parts.append(data[max(0, start - first) : min(len(data), stop - first)])
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def time_of(self, sample: int) -> float:
        """When ``sample`` was heard: its chunk's arrival, less the part of the chunk after it."""
        previous = None
        for first, data, arrived in self._chunks:
            last = first + len(data)
            if first <= sample < last or (sample == last and data is self._chunks[-1][1]):
                estimate = arrived - (last - sample) / self.rate
                return max(estimate, previous) if previous is not None else estimate
            previous = arrived
        return self._chunks[-1][2] if self._chunks else self.clock()


@dataclass
class VoiceTurn:
    """One spoken exchange: what was heard, what was said, and when each stage happened."""

    transcript: str
    end_of_speech: float  # perf_counter of the last voiced sample
    marks: dict[str, float] = field(default_factory=dict)
    result: "TurnResult | None" = None
    handle: "Reply | None" = None
    barged_in: bool = False
    continued: bool = False  # the person went on talking before hearing anything: merged into the next turn
    speculative_hit: bool = False
    audio_start: int = 0  # input sample where the speech of this transcript starts (a merge decodes from there)
    words_before: list[str] = field(default_factory=list)  # its words said before audio_start (stretches kept earlier)
    stt_seconds: float = 0.0  # transcription compute still running after the end-of-speech wait
    llm_seconds_to_first_sentence: float = 0.0
    tts_first_seconds: float = 0.0
    recall_seconds: float = 0.0
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False)  # the pipeline's

    def mark(self, stage: str, at: float | None = None) -> None:
        self.marks.setdefault(stage, self.clock() if at is None else at)

    def audible(self) -> bool:
        """True once the listener has heard any of the reply."""
        speech = self.handle.speech if self.handle is not None else None
        return speech is not None and speech.started_playing()

    def has_audio(self) -> bool:
        """True once the reply's first audio was synthesised."""
        speech = self.handle.speech if self.handle is not None else None
        return "first_audio" in self.marks or (speech is not None and speech.first_audio_at is not None)

    def timings_ms(self) -> dict[str, float]:
        t0 = self.end_of_speech
        out = {stage: round((t - t0) * 1000, 1) for stage, t in self.marks.items()}
        if "playback_start" in self.marks:
            v2v = self.marks["playback_start"] - t0
            out["voice_to_voice_ms"] = round(v2v * 1000, 1)
            wait = self.marks.get("end_detected", t0) - t0
            models = self.stt_seconds + self.llm_seconds_to_first_sentence + self.tts_first_seconds + self.recall_seconds
            out["overhead_ms"] = round(max(0.0, v2v - wait - models) * 1000, 1)
        out["stt_after_end_ms"] = round(self.stt_seconds * 1000, 1)
        out["llm_to_first_sentence_ms"] = round(self.llm_seconds_to_first_sentence * 1000, 1)
        out["tts_first_chunk_ms"] = round(self.tts_first_seconds * 1000, 1)
        out["recall_ms"] = round(self.recall_seconds * 1000, 1)  # memory and prompt, before the model is asked
        return out


@dataclass
class _Stretch:
    """A transcription in flight of input samples [start, stop)."""

    start: int
    stop: int
    task: asyncio.Task[str]
    commit: bool  # a long stretch ending at a pause: kept even if speech resumes
    started: float = field(default_factory=time.perf_counter)


@dataclass
class _Ended:
    """What was decoded of an utterance when its end was detected: its finishing task reads it from here."""

    commit: _Stretch | None  # a stretch kept at a pause, maybe still decoding
    spec: _Stretch | None  # the decode started at the last pause
    committed: list[str]  # the words of the stretches kept before
    cut: int  # where the audio still to read starts
    merged: bool  # it continues earlier speech, decoded again with it
    prefix: list[str]  # a merge's words said before the earlier speech's audio (its stretches kept before)


class VoicePipeline:
    def __init__(
        self,
        companion: "Companion",
        *,
        vad: VAD,
        stt: STT,
        tts: TTS,
        buffer: PlaybackBuffer,
        policy: TurnPolicy | None = None,
        barge_in: BargeIn | None = None,
        conversation_id: str = "voice",
        speaker_id: str = "local",
        speaker_name: str | None = None,
        platform: str = "voice",
        commit_seconds: float = 8.0,
        stretch_pause_ms: int = 128,
        first_words: int = 0,
        on_turn: Callable[[VoiceTurn], Any] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        cast: Any = None,
    ) -> None:
        self.companion = companion
        self.cast = cast  # [[characters]] (companion.group.Cast): what is said is answered by the group
        self.clock = clock  # a test's VirtualClock, or real time: every timestamp of the pipeline is read from it
        self.bus = companion.bus
        self.vad = vad
        self.stt = stt
        self.tts = tts
        self.buffer = buffer
        self.policy = policy or TurnPolicy()
        self.barge_in = barge_in or BargeIn()
        self.conversation_id = conversation_id
        self.speaker_id = speaker_id
        self.speaker_name = speaker_name
        self.platform = platform
        self.commit_samples = int(commit_seconds * INPUT_RATE)
        # A pause this long inside speech (a sentence's end) keeps the decode that began at it: the final decode
        # then reads only what followed, and is ready sooner. 0 keeps only stretches of commit_seconds.
        self.stretch_pause = stretch_pause_ms * INPUT_RATE // 1000
        self.on_turn = on_turn
        self.first_words = first_words
        self.ring = InputRing(clock=clock)
        self.turns: list[VoiceTurn] = []
        self.heard_nothing = 0  # utterances that turned out empty (noise, or nothing whisper could read)
        self._merge_from: int | None = None  # start of earlier speech the current utterance continues
        self._merge_words: list[str] = []  # what that speech said before _merge_from (stretches kept before it)
        self._last_ended = 0  # the number of the last utterance whose end was detected
        self._holding: dict[asyncio.Task[None], int] = {}  # ended utterances not yet judged: where their audio starts
        self._reset_utterance()
        self._current: VoiceTurn | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._end_tasks: set[asyncio.Task[None]] = set()
        self._last_finish: asyncio.Task[None] | None = None
        self.taking = TurnTaking(self.policy, self.barge_in)  # every turn-taking decision, as pure logic

    def _reset_utterance(self) -> None:
        self._committed: list[str] = []
        self._commit_cut: int | None = None  # input sample where uncommitted speech starts
        self._commit_task: _Stretch | None = None
        self._speculative: _Stretch | None = None
        self._read_merge = False  # a decode of this utterance began at _merge_from: the earlier speech is in it

    # -- input ------------------------------------------------------------------

    async def run(self, source: AsyncIterable[np.ndarray], *, max_turns: int | None = None) -> None:
        """Listen until the source ends (or ``max_turns`` turns started), then finish the last reply."""
        remove_voice = self._own_voice()
        try:
            await self._listen(source, max_turns)
        finally:
            remove_voice()

    async def _listen(self, source: AsyncIterable[np.ndarray], max_turns: int | None) -> None:
        splitter = FrameSplitter(self.vad.frame_samples)
        position = 0
        async for chunk in source:
            self.ring.append(chunk, self.clock())
            for frame in splitter.feed(chunk):
                for step in self.taking.frame(self.vad.prob(frame), position, len(frame), self._reply_state()):
                    self._do(step)
                position += len(frame)
            keep = self._commit_cut if self._commit_cut is not None else position - INPUT_RATE
            if self._merge_from is not None:
                keep = min(keep, self._merge_from)  # the speech this one continues is decoded again with it
            if self._holding:
                keep = min(keep, *self._holding.values())  # an ended utterance not yet judged may be merged
            if (pending := self._unheard_turn()) is not None:
                keep = min(keep, pending.audio_start)  # its reply may yet be taken back: its speech is decoded again
            self.ring.trim(keep)
            if max_turns is not None and sum(t.has_audio() for t in self.turns) >= max_turns:
                break
        if self._end_tasks:
            await asyncio.gather(*self._end_tasks, return_exceptions=True)
        if self._turn_task is not None:
            await asyncio.gather(self._turn_task, return_exceptions=True)

    @property
    def _speech_seq(self) -> int:
        return self.taking.utterances

    def _unheard_turn(self) -> VoiceTurn | None:
        """The last turn, while its reply is being prepared and nobody has heard a word of it: if the person goes
        on, it is taken back and its speech decoded again with what follows, so its audio must still be here."""
        if self._turn_task is None or self._turn_task.done() or not self.turns:
            return None
        voice = self.turns[-1]
        return None if voice.audible() or voice.barged_in or voice.continued else voice

    def _reply_state(self) -> ReplyState:
        voice = self._current
        if voice is not None and not voice.audible() and not voice.barged_in:
            return ReplyState.PREPARING
        return ReplyState.AUDIBLE if self.speaking() else ReplyState.NONE

    def _do(self, step: Step) -> None:
        """Carry out one turn-taking decision."""
        event = step.event
        if step.act is Act.SPEECH_STARTED and event is not None:
            self._commit_cut = event.speech_start
            self.bus.publish(SpeechStarted(self.conversation_id, self.speaker_id))
        elif step.act is Act.TAKE_BACK:
            voice = self._current
            if voice is not None:
                voice.continued = True
                self._merge_with(voice.audio_start, voice.words_before)
                if voice.handle is not None:
                    voice.handle.interrupt()
        elif step.act is Act.BARGE_IN:
            self.interrupt_reply()
        elif step.act is Act.TRANSCRIBE and event is not None:
            self._transcribe_to(event.speech_end)
        elif step.act is Act.CANCEL_SPECULATION and event is not None:
            spec = self._speculative
            if spec is not None and not spec.commit:
                if self._keeps(spec, event.sample):
                    self._keep(spec)
                else:
                    spec.task.cancel()  # stale: the person went on talking
                self._speculative = None
        elif step.act is Act.END_OF_UTTERANCE and event is not None:
            self._last_ended = self.taking.utterances
            previous = self._last_finish
            # Its audio stays in the ring until its verdict: speech that goes on may yet be merged with it.
            hold = self._commit_cut if self._commit_cut is not None else event.speech_start
            hold = hold if self._merge_from is None else min(hold, self._merge_from)
            ended = self._end_utterance(event)  # now, not in the task: the next utterance may begin before it runs
            task = asyncio.create_task(
                self._finish_utterance(ended, event, self.clock(), self.taking.utterances, previous), name="voice-utterance"
            )
            self._last_finish = task
            self._end_tasks.add(task)
            task.add_done_callback(self._end_tasks.discard)
            self._holding[task] = hold
            task.add_done_callback(lambda t: self._holding.pop(t, None))
        elif step.act is Act.FORGET_UTTERANCE:
            self._reset_utterance()

    def _keeps(self, spec: _Stretch, resumed: int) -> bool:
        """Is the decode that began at this pause worth keeping now that the person goes on?

        After a real pause (a sentence's end) whisper read a whole stretch with silence after it, so the words are
        final: keeping them means the decode at the end reads only what follows. A gap between words is too short
        to cut at (the seam would split a word), and speech that continues earlier words (a merge) is left whole.
        """
        return (
            self.stretch_pause > 0
            and resumed - spec.stop >= self.stretch_pause
            and spec.stop - spec.start >= INPUT_RATE
            and self._commit_task is None
            and self._merge_from is None
            and not spec.task.cancelled()
        )

    def _keep(self, spec: _Stretch) -> None:
        spec.commit = True
        self._commit_task = spec
        self._commit_cut = spec.stop
        spec.task.add_done_callback(lambda _t: self._on_committed(spec))

    def _merge_with(self, start: int, words: list[str] | None = None) -> None:
        """The person went on after a pause that ended an utterance: that speech (from ``start``) and what follows
        are one thing said, and whisper reads them as one (two halves decoded apart lose the words at the seam).

        ``words``: what that utterance said before ``start``, in stretches already read (its audio is gone).
        """
        if self._merge_from is None or start < self._merge_from:
            self._merge_from = start
            self._merge_words = list(words or [])

    def _span_start(self) -> int:
        """Where the audio to decode starts: the uncommitted speech, or the earlier speech it continues."""
        start = self._commit_cut if self._commit_cut is not None else 0
        if self._merge_from is not None and not self._committed and self._commit_task is None:
            start = min(start, self._merge_from)
        return start

    def _words_before(self, start: int) -> list[str]:
        """The words said before ``start`` in this utterance: a merge's earlier words, then its kept stretches."""
        if self._merge_from is not None and start == self._merge_from and not self._committed:
            self._read_merge = True
        return [*self._merge_words, *self._committed] if self._read_merge else self._committed

    def _transcribe_to(self, stop: int) -> None:
        """Start transcribing the uncommitted speech up to ``stop`` (a pause), speculatively."""
        start = self._span_start()
        if stop <= start:
            return
        if self._speculative is not None and not self._speculative.task.done() and not self._speculative.commit:
            self._speculative.task.cancel()
        commit = stop - start >= self.commit_samples and self._commit_task is None
        audio = self.ring.slice(start, stop + POST_ROLL)  # what has arrived of the pause: whisper wants a tail
        # The final decode, started early: when the pause turns out to end the utterance its result is the
        # transcript, so it runs with the final settings ([voice.stt] beam_size), not a cheaper partial's.
        task = asyncio.create_task(self._decode_after(audio, self._words_before(start), self._commit_task), name="voice-stt")
        stretch = _Stretch(start, stop, task, commit, self.clock())
        self._speculative = stretch
        if commit:
            self._commit_task = stretch
            self._commit_cut = stop
            task.add_done_callback(lambda _t: self._on_committed(stretch))
        else:
            task.add_done_callback(lambda t: self._publish_partial(t))

    async def _decode_after(self, audio: np.ndarray, committed: list[str], pending: _Stretch | None) -> str:
        """Decode a stretch once the stretch before it is read: its words are the prompt (whisper keeps names and
        spelling consistent across the seam). One worker decodes in order anyway, so this waits for nothing more."""
        if pending is not None:
            await asyncio.wait([pending.task])  # not gather: cancelling this decode must not cancel the kept one
            self._on_committed_into(pending, committed)
        return await self._stt(audio, partial=False, prompt=" ".join(committed))

    def _on_committed(self, stretch: _Stretch) -> None:
        if self._commit_task is not stretch:
            return  # its utterance has ended: _finish_utterance gathers its words, not the next utterance
        if stretch.task.cancelled() or stretch.task.exception() is not None:
            self._commit_task = None
            return
        text = stretch.task.result()
        if text:
            self._committed.append(text)
            self.bus.publish(Transcript(self.conversation_id, self.speaker_id, " ".join(self._committed), False))
        self._commit_task = None

    def _publish_partial(self, task: asyncio.Task[str]) -> None:
        if task.cancelled() or task.exception() is not None or not task.result():
            return
        text = " ".join([*self._committed, task.result()])
        self.bus.publish(Transcript(self.conversation_id, self.speaker_id, text, False))

    async def _stt(self, audio: np.ndarray, *, partial: bool, prompt: str = "") -> str:
        try:
            return await self.stt.transcribe(audio, partial=partial, prompt=prompt)
        except STTError as exc:
            log.error("stt: %s", exc)
            return ""

    def _end_utterance(self, event: PolicyEvent) -> _Ended:
        """Hand what was decoded of the utterance that just ended to its finishing task, and start afresh."""
        commit, spec, committed = self._commit_task, self._speculative, self._committed
        cut = self._commit_cut if self._commit_cut is not None else event.speech_start
        reads_merge = self._merge_from is not None and not committed and commit is None  # the final decode will
        if reads_merge and self._merge_from is not None:
            cut = min(cut, self._merge_from)
        merged = reads_merge or self._read_merge
        prefix = self._merge_words if merged else []
        self._merge_from, self._merge_words = None, []
        self._reset_utterance()
        return _Ended(commit, spec, committed, cut, merged, prefix)

    async def _finish_utterance(
        self, ended: _Ended, event: PolicyEvent, detected_at: float, seq: int, previous: asyncio.Task[None] | None
    ) -> None:
        end_of_speech = self.ring.time_of(event.speech_end)
        commit, spec, committed, cut, merged = ended.commit, ended.spec, ended.committed, ended.cut, ended.merged
        if commit is not None:
            await asyncio.gather(commit.task, return_exceptions=True)
            self._on_committed_into(commit, committed)
        before = [*ended.prefix, *committed]  # the words said before the audio still to read, in order
        # The decode started at the pause is the transcript, if it read all of it: one started before this speech
        # was known to continue earlier words (a merge) began too late and would drop them.
        hit = spec is not None and not spec.commit and spec.stop == event.speech_end and spec.start <= cut and not spec.task.cancelled()
        if hit and spec is not None:
            tail = await spec.task
        elif commit is not None and commit.stop >= event.speech_end:
            tail = ""
        else:
            tail = await self._stt(
                self.ring.slice(cut, event.speech_end + POST_ROLL), partial=False, prompt=" ".join(before)
            )
        transcript = " ".join(p for p in [*before, tail] if p).strip()
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        if self._turn_task is not None and not self._turn_task.done():
            if self.taking.interrupts():
                self.interrupt_reply()
            await asyncio.gather(self._turn_task, return_exceptions=True)
        if merged:
            self.taking.drop_carry()  # the transcript already holds what was carried: decoded with it, as one
        verdict = self.taking.verdict(transcript, seq)
        if verdict.carried and self._last_ended == seq:
            # They already go on: decode this again with what follows. Not when what follows has ended too (this
            # decode was slower than their pause and their next words): its decode has begun without this audio,
            # the words carried in text join it, and a merge left behind would glue these words to the next question.
            self._merge_with(cut, before)
        if verdict.empty:
            self.heard_nothing += 1
            log.info("voice: heard sound but no words")
        if verdict.answer is None:
            return
        transcript = verdict.answer
        done = self.clock()
        voice = VoiceTurn(transcript, end_of_speech, speculative_hit=hit, audio_start=cut, words_before=before, clock=self.clock)
        voice.mark("end_detected", detected_at)
        voice.mark("transcript", done)
        voice.stt_seconds = max(0.0, done - detected_at)
        self.bus.publish(Transcript(self.conversation_id, self.speaker_id, transcript, True))
        self.turns.append(voice)
        self._turn_task = asyncio.create_task(self._reply(voice), name="voice-turn")

    @staticmethod
    def _on_committed_into(stretch: _Stretch, committed: list[str]) -> None:
        if stretch.task.done() and not stretch.task.cancelled() and stretch.task.exception() is None:
            text = stretch.task.result()
            if text and text not in committed:
                committed.append(text)

    # -- output -----------------------------------------------------------------

    def _own_voice(self) -> Callable[[], None]:
        """Make sure replies of this conversation are spoken on this pipeline's output (the router decides)."""
        router = self.companion.voices
        voice = router.find(self.buffer)
        if voice is None:
            conversation = self.conversation_id
            return router.add(Voice(f"voice:{conversation}", self.buffer, self.tts, owns=conversation.__eq__, broadcast=False))
        if voice.owns(self.conversation_id):
            return lambda: None
        owned, conversation = voice.owns, self.conversation_id
        voice.owns = lambda c: c == conversation or owned(c)

        def restore() -> None:
            voice.owns = owned

        return restore

    def speaking(self) -> bool:
        """True while a reply is being written, or anything is played on this output."""
        voice = self.companion.voices.find(self.buffer)
        return (
            (self._turn_task is not None and not self._turn_task.done())
            or self.buffer.busy
            or (voice is not None and voice.speech is not None)
        )

    def interrupt_reply(self) -> str:
        """Barge-in: stop writing, stop synthesising, drop queued audio. Returns what the person had heard."""
        voice = self._current
        heard = self.companion.voices.interrupt(self.buffer)  # whatever plays here: our reply, commentary, chat answers
        if self.cast is not None:
            self.cast.interrupt(self.conversation_id)  # the group's lines still to come go too
        handle = voice.handle if voice is not None else None
        if handle is not None and voice is not None and not handle.done:
            heard = handle.interrupt() or heard
            voice.barged_in = True
            voice.mark("barge_in")
        if handle is not None or heard:
            self.bus.publish(BargedIn(self.conversation_id, handle.id if handle is not None else "", heard))
            log.info("voice: barge-in after %r", heard[-60:])
        return heard

    async def _group_reply(self, voice: VoiceTurn, options: dict[str, Any]) -> None:
        """The group answers; the voice turn's timings are its first line's, and a barge-in stops them all."""

        def started(name: str, handle: Any) -> None:
            if voice.handle is None:
                voice.handle = handle

        lines = await self.cast.respond(voice.transcript, on_start=started, **options)
        voice.result = lines[0].result if lines else None

    async def _reply(self, voice: VoiceTurn) -> None:
        self._current = voice

        def on_sentence(sentence: Sentence) -> None:
            if "first_sentence" not in voice.marks:
                voice.mark("first_sentence")
                turn = voice.handle.turn if voice.handle is not None else None
                voice.llm_seconds_to_first_sentence = turn.provider_seconds if turn is not None else 0.0

        options: dict[str, Any] = {
            "conversation_id": self.conversation_id, "speaker_id": self.speaker_id, "speaker_name": self.speaker_name,
            "platform": self.platform, "on_sentence": on_sentence, "first_words": self.first_words,
        }
        voice.mark("llm_start")
        try:
            if self.cast is not None:
                await self._group_reply(voice, options)
            else:
                voice.handle = self.companion.reply(voice.transcript, **options)
                voice.result = await voice.handle.wait()  # a failure is logged by the engine, once
        finally:
            self._current = None
        handle = voice.handle  # None only when a group turn was stopped before anyone started
        first = handle.first_turn if handle is not None else None
        if first is not None:
            voice.recall_seconds = max(0.0, first.marks.get("prompt_ready", first.t0) - first.t0)
            if "first_token" in first.marks:
                voice.mark("first_token", first.marks["first_token"])
        speech = handle.speech if handle is not None else None
        if speech is not None:
            voice.tts_first_seconds = speech.tts_first_seconds
            if speech.first_audio_at is not None:
                voice.mark("first_audio", speech.first_audio_at)
            if speech.first_play_at is not None:
                voice.mark("playback_start", speech.first_play_at)
        if voice.continued:
            await self.companion.history.retract(self.conversation_id, self.speaker_id, voice.transcript)
            if self._merge_from is not None:  # else the next transcript was already decoded with these words in it
                self.taking.took_back(voice.transcript)
            self.turns.remove(voice)
            log.info("voice: the person went on speaking; the reply was dropped before a word was played")
            return
        voice.mark("done")
        timings = voice.timings_ms()
        turn_id = voice.result.turn_id if voice.result else ""
        self.bus.publish(VoiceTimings(self.conversation_id, turn_id, timings))
        log.info(
            "voice turn %s: voice-to-voice %s ms (stt after end %s, llm first sentence %s, tts %s)%s",
            turn_id, timings.get("voice_to_voice_ms"), timings["stt_after_end_ms"],
            timings["llm_to_first_sentence_ms"], timings["tts_first_chunk_ms"], " [barge-in]" if voice.barged_in else "",
        )
        if self.on_turn is not None:
            self.on_turn(voice)
