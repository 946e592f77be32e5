"""The voice loop on a scripted timeline: real VAD on real speech, barge-in, continuation, timings.

Everything runs on a VirtualClock: the audio goes in as fast as the pipeline takes it, the model writes, the
output plays and the person talks over it at the audio times the test gives, on a busy machine as on an idle one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from companion.character.persona import default_character
from companion.config import Settings
from companion.core.audio_level import AudioLevel
from companion.core.engine import Companion
from companion.core.history import HistoryStore
from companion.runtime.events import BargedIn, SpeechStarted, Transcript, VoiceTimings
from companion.testing import ScriptedLLM, VirtualClock, eventually, feed_virtual
from companion.voice.audio import INPUT_RATE
from companion.voice.build import build_policy
from companion.voice.pipeline import VoicePipeline
from companion.voice.playback import PacedOutput, PlaybackBuffer
from companion.voice.policy import BargeIn
from companion.voice.sources import QueueSource
from companion.voice.stt.base import STT
from companion.voice.tts.base import TTS
from companion.voice.vad import SileroVAD
from tests.voice.conftest import speech_16k

REPLY = (
    "Paris is sunny today and quite warm. "
    "You could walk along the river in the afternoon. "
    "In the evening the museums stay open late. "
    "Do not forget a hat because the sun is strong."
)


class ListSTT(STT):
    """The prepared transcript of the utterance being heard (the STT itself has its own tests)."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.pipeline: VoicePipeline | None = None
        self.clock: VirtualClock | None = None

    async def transcribe(self, samples, *, partial=False, prompt=""):
        seq = self.pipeline._speech_seq  # noqa: SLF001 - which utterance this is
        assert self.clock is not None
        await self.clock.sleep(0.05)  # whisper takes a moment
        text = self.texts[min(seq - 1, len(self.texts) - 1)]
        return text[len(prompt):].strip() if prompt and text.startswith(prompt) else text  # after a kept stretch: the rest


class ToneTTS(TTS):
    """A quarter second of tone per word, at once: lets the test know how long each sentence plays."""

    sample_rate = 16000

    async def synthesize(self, text: str) -> AsyncIterator[np.ndarray]:
        n = int(0.25 * self.sample_rate * len(text.split()))
        yield (np.sin(np.arange(n) / 10) * 0.3).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * INPUT_RATE), np.float32)


async def make(tmp_path: Path, stt: ListSTT, barge_in: BargeIn, script: list[str] | None = None, token_delay: float = 0.01):
    clock = VirtualClock()
    settings = Settings.model_validate({"companion": {"data_dir": str(tmp_path)}, "memory": {"enabled": False}})
    llm = ScriptedLLM(script or [REPLY], token_delay=token_delay, sleep=clock.sleep)
    companion = Companion(settings, llm=llm, character=default_character(), history=HistoryStore(tmp_path / "h.sqlite3"))
    await companion.start()
    buffer = PlaybackBuffer(16000, clock=clock)
    output = PacedOutput(buffer, realtime=True, clock=clock, sleep=clock.sleep)  # plays in (virtual) real time
    output.start()
    pipeline = VoicePipeline(  # the product's turn policy ([voice] defaults: pause_ms, silence_ms, thresholds)
        companion, vad=SileroVAD(), stt=stt, tts=ToneTTS(), buffer=buffer, policy=build_policy(settings), barge_in=barge_in, clock=clock,
    )
    stt.pipeline, stt.clock = pipeline, clock
    return companion, pipeline, output, clock


def stamp(bus, kind, into: list, clock: VirtualClock) -> None:
    bus.subscribe(kind, lambda e: into.append((clock(), e)))


async def settle(clock: VirtualClock, until, seconds: float = 30.0, source: QueueSource | None = None) -> None:
    """Let virtual time pass until ``until()`` holds: 20 ms at a time, or 100 ms of silence fed to ``source`` (the
    microphone stays open while she answers). Work off the loop, such as SQLite's thread, still takes real time."""
    for _ in range(int(seconds / 0.02)):
        if until():
            return
        if source is not None:
            await feed_virtual(source, silence(0.1), clock)
        else:
            await clock.advance(0.02)
        await asyncio.sleep(0.001)  # real time on purpose: lets the history's SQLite thread answer the loop
    raise AssertionError("condition not reached")


async def test_barge_in_stops_the_reply_and_history_keeps_only_what_was_heard(tmp_path):
    """Speaking over the reply stops it within 200 ms; queued audio is dropped; history holds the heard prefix."""
    question = speech_16k("What is the weather like in Paris today", tmp_path, "q")
    interruption = speech_16k("Wait, stop, what about tomorrow", tmp_path, "i")
    companion, pipeline, output, clock = await make(tmp_path, ListSTT(["What is the weather like in Paris today?", "Wait, what about tomorrow?"]), BargeIn("on"))
    starts, barges = [], []
    stamp(companion.bus, SpeechStarted, starts, clock)
    stamp(companion.bus, BargedIn, barges, clock)
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    await feed_virtual(source, np.concatenate([silence(0.3), question, silence(0.5)]), clock)
    await settle(clock, lambda: pipeline.buffer.first_play_at is not None, source=source)  # wait for the reply to be heard
    await feed_virtual(source, silence(2.4), clock)  # the first sentence (8 words = 2 s) and a bit of the second play
    await feed_virtual(source, np.concatenate([interruption, silence(0.6)]), clock)
    source.close()
    await settle(clock, run.done)
    await output.close()

    assert len(barges) == 1
    barge_at, event = barges[0]
    speech_at = starts[-1][0]
    assert barge_at - speech_at < 0.2
    assert event.heard.startswith("Paris is sunny today and quite warm.")
    assert "museums" not in event.heard
    assert not pipeline.buffer.busy
    stored = [m for m in await companion.history.recent("voice", 10) if m.role == "assistant"]
    assert stored[0].content == event.heard and stored[0].interrupted
    assert "hat" not in stored[0].content and "interrupt" not in stored[0].content.lower()
    users = [m.content for m in await companion.history.recent("voice", 10) if m.role == "user"]
    assert users == ["What is the weather like in Paris today?", "Wait, what about tomorrow?"]
    await companion.close()


async def test_barge_in_off_lets_the_reply_finish(tmp_path):
    """With barge_in = "off", talking over the reply does not cut it; the whole reply is stored."""
    question = speech_16k("Tell me about Paris", tmp_path, "q")
    companion, pipeline, output, clock = await make(
        tmp_path, ListSTT(["Tell me about Paris.", "Okay."]), BargeIn("off"), ["Paris is lovely. It has many parks."], 0.005
    )
    barges = []
    stamp(companion.bus, BargedIn, barges, clock)
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    await feed_virtual(source, np.concatenate([silence(0.3), question, silence(0.5)]), clock)
    await settle(clock, lambda: pipeline.buffer.first_play_at is not None, source=source)
    await feed_virtual(source, np.concatenate([question, silence(2.5)]), clock)
    source.close()
    await settle(clock, run.done)
    await output.close()
    assert barges == []
    replies = [m.content for m in await companion.history.recent("voice", 10) if m.role == "assistant"]
    assert replies[0] == "Paris is lovely. It has many parks."
    await companion.close()


async def test_talking_on_after_a_pause_merges_into_one_turn(tmp_path):
    """A pause long enough to end the turn, then more speech before any reply audio: one answer to both parts, whose
    words whisper reads again as one stretch (decoded apart, the words at the seam get lost)."""
    part1 = speech_16k("I was wondering", tmp_path, "a")
    part2 = speech_16k("whether it will rain in London tomorrow", tmp_path, "b")
    stt = ListSTT(["I was wondering", "I was wondering whether it will rain in London tomorrow?"])
    heard: list[int] = []
    transcribe = stt.transcribe

    async def recording(samples, *, partial=False, prompt=""):
        heard.append(len(samples))
        return await transcribe(samples, partial=partial, prompt=prompt)

    stt.transcribe = recording  # type: ignore[method-assign]
    companion, pipeline, output, clock = await make(  # the model slow enough that nothing plays before part two
        tmp_path, stt, BargeIn("on"), ["Probably, it is London after all."], 0.2,
    )
    finals, timings = [], []
    companion.bus.subscribe(Transcript, lambda e: finals.append(e.text) if e.final else None)
    companion.bus.subscribe(VoiceTimings, timings.append)
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    await feed_virtual(source, np.concatenate([silence(0.3), part1, silence(0.5), part2, silence(0.5)]), clock)
    await settle(clock, lambda: not pipeline.speaking() and pipeline.buffer.first_play_at is not None, source=source)
    source.close()
    await settle(clock, run.done)
    await output.close()
    history = await companion.history.recent("voice", 10)
    assert [(m.role, m.content) for m in history] == [
        ("user", "I was wondering whether it will rain in London tomorrow?"),
        ("assistant", "Probably, it is London after all."),
    ]
    assert len(timings) == 1 and timings[0].timings["voice_to_voice_ms"] > 0
    assert heard[-1] > len(part2) + 0.5 * INPUT_RATE  # the answer's transcript: part two, the pause and part one
    await companion.close()


@pytest.mark.parametrize("stt_seconds", [0.9, 1.2, 1.5, 1.8, 2.1, 3.0])
async def test_a_pause_decoded_slowly_loses_no_words_and_glues_none_onto_the_next_question(tmp_path, stt_seconds):
    """However long whisper takes to read part one (while part two is spoken, ends, or is being read), the answer
    covers both parts, and the next question is heard alone. Two bugs lived here: part two's decode, started before
    part one was known to go on, became the transcript without part one's words; and a merge meant for part two,
    set after it had ended, glued part one's words to the next question."""
    part1 = speech_16k("My friend Anna is visiting from Reykjavik", tmp_path, "a")
    part2 = speech_16k("next weekend", tmp_path, "b")
    part3 = speech_16k("What should we cook tonight", tmp_path, "c")
    heard: list[int] = []
    stt = ListSTT([])
    clock_box: list[VirtualClock] = []

    async def slow(samples, *, partial=False, prompt=""):
        heard.append(len(samples))
        await clock_box[0].sleep(stt_seconds)
        return f"words {len(samples) // 1600}"

    stt.transcribe = slow  # type: ignore[method-assign]
    companion, pipeline, output, clock = await make(tmp_path, stt, BargeIn("on"), ["Sounds fun.", "Pasta."])
    clock_box.append(clock)
    finals: list[str] = []
    companion.bus.subscribe(Transcript, lambda e: finals.append(e.text) if e.final else None)
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    await feed_virtual(source, np.concatenate([silence(0.3), part1, silence(0.45), part2, silence(0.5)]), clock)
    await settle(clock, lambda: len(finals) == 1 and not pipeline.speaking() and pipeline.buffer.first_play_at is not None, source=source)
    await settle(clock, lambda: not pipeline.speaking(), source=source)
    before = len(heard)
    await feed_virtual(source, np.concatenate([silence(0.5), part3, silence(0.6)]), clock)
    await settle(clock, lambda: len(finals) == 2, source=source)
    source.close()
    await settle(clock, run.done)
    await output.close()
    read = [sum(int(n) for n in re.findall(r"\d+", text)) * 1600 for text in finals]  # audio behind each transcript
    assert read[0] >= 0.8 * (len(part1) + len(part2)), finals  # one answer to both parts: merged, or carried in front
    assert max(heard[before:]) < len(part3) + 1.0 * INPUT_RATE, "the next question was decoded with the old words in front"
    assert read[1] < len(part3) + 1.0 * INPUT_RATE, finals
    await companion.close()


async def test_announcements_play_in_order_on_the_voice_and_count_as_speaking(tmp_path):
    """Unprompted lines (reminders) play one after the other on the voice; while heard, the companion counts as speaking."""
    from companion.core.speech import Voice

    companion, pipeline, output, clock = await make(tmp_path, ListSTT(["x"]), BargeIn("on"))
    companion.audio_level = pipeline.buffer.level = AudioLevel(clock=clock)  # "is she speaking" on the same clock
    output.recording = []
    companion.voices.add(Voice("speaker", pipeline.buffer, pipeline.tts, owns="voice".__eq__))
    assert not companion.is_speaking()
    await companion.announce("first line here")
    await companion.announce("and the second")
    await settle(clock, lambda: pipeline.buffer.first_play_at is not None)
    assert companion.is_speaking()  # audio is being heard, though no reply is being written
    await settle(clock, lambda: pipeline.buffer.spoken_text() == "and the second" and not pipeline.buffer.busy)
    heard = np.concatenate(output.recording)
    assert len(heard) >= int(0.25 * 16000 * 6) * 0.95  # six words, a quarter second each: nothing was cut
    await settle(clock, lambda: not companion.is_speaking(), seconds=0.5)  # quiet once the 0.3 s after the last sound passed
    stored = await companion.history.recent("announcements", 5)
    assert [m.content for m in stored] == ["first line here", "and the second"]
    await output.close()
    await companion.close()


def trimmed(samples: np.ndarray) -> np.ndarray:
    """Speech without the silence espeak puts around it: the test then sets the pauses itself."""
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return samples[loud[0]:loud[-1] + 1]


async def test_a_sentence_pause_keeps_its_decode_and_the_last_one_reads_only_the_rest(tmp_path, whisper):
    """Two sentences with a short breath between them (shorter than the end-of-speech wait): the stretch read at the
    breath is kept, the decode at the end reads only the second sentence with the first one's words as its prompt,
    and the transcript holds every word that whisper hears when it reads the whole question at once."""
    first = trimmed(speech_16k("My cat Biscuit keeps waking me up at five in the morning.", tmp_path, "a"))
    second = trimmed(speech_16k("What can I do so that we both sleep longer?", tmp_path, "b"))
    question = np.concatenate([first, silence(0.24), second])
    decodes: list[tuple[int, str]] = []

    class Recording(ListSTT):
        async def transcribe(self, samples, *, partial=False, prompt=""):
            decodes.append((len(samples), prompt))
            return await whisper.transcribe(samples, partial=partial, prompt=prompt)

    stt = Recording([])
    companion, pipeline, output, clock = await make(tmp_path, stt, BargeIn("on"), ["Try a later dinner for Biscuit."])
    finals: list[str] = []
    companion.bus.subscribe(Transcript, lambda e: finals.append(e.text) if e.final else None)
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    await feed_virtual(source, np.concatenate([silence(0.3), question, silence(0.6)]), clock)
    await settle(clock, lambda: len(finals) == 1, source=source)
    source.close()
    await settle(clock, run.done)
    await output.close()
    whole = await whisper.transcribe(np.concatenate([silence(0.3), question, silence(0.6)]))
    words = lambda text: set(re.findall(r"[a-z0-9']+", text.lower()))  # noqa: E731
    assert words(whole) <= words(finals[0]), (whole, finals[0])
    last_read, last_prompt = decodes[-1]
    assert last_read < len(second) + 0.8 * INPUT_RATE, "the decode at the end read the first sentence again"
    assert "biscuit" in last_prompt.lower(), last_prompt
    assert len(finals) == 1 and finals[0].lower().index("biscuit") < finals[0].lower().index("sleep")
    await companion.close()


async def test_going_on_after_a_turn_ending_pause_keeps_every_word_said_before_it(tmp_path, whisper):
    """A breath inside the first sentence (a stretch read while they talk), then a pause long enough to end the
    turn, then a question once its transcript is in: the reply is taken back and the one answer holds every word
    of both, as whisper hears them: the merged decode reads the speech again, and the stretch read before it."""
    rest = trimmed(speech_16k("It is really annoying.", tmp_path, "b"))
    first = np.concatenate([trimmed(speech_16k("My cat Biscuit keeps waking me up at five in the morning.", tmp_path, "a")), silence(0.24), rest])
    second = trimmed(speech_16k("What can I do so that we both sleep longer?", tmp_path, "c"))
    decodes: list[int] = []

    class Recording(ListSTT):
        async def transcribe(self, samples, *, partial=False, prompt=""):
            decodes.append(len(samples))
            return await whisper.transcribe(samples, partial=partial, prompt=prompt)

    stt = Recording([])
    companion, pipeline, output, clock = await make(  # the model slow enough that nothing plays before the question
        tmp_path, stt, BargeIn("on"), ["Try a later dinner for Biscuit, then."], 0.3,
    )
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    await feed_virtual(source, np.concatenate([silence(0.3), first, silence(0.5)]), clock)
    await eventually(lambda: pipeline.turns, timeout=60, what="the first part's transcript")  # virtual time stands still
    kept_before_pause = len(decodes)
    await feed_virtual(source, np.concatenate([second, silence(0.6)]), clock)
    await settle(clock, lambda: not pipeline.speaking() and pipeline.buffer.first_play_at is not None, source=source)
    source.close()
    await settle(clock, run.done)
    await output.close()

    assert kept_before_pause >= 2, "no stretch was read at the breath: the test no longer covers kept words"
    users = [m.content for m in await companion.history.recent("voice", 10) if m.role == "user"]
    assert len(users) == 1, users
    said = set(re.findall(r"[a-z']+", users[0].lower()))
    for word in ("cat", "waking", "morning", "annoying", "sleep", "longer"):
        assert word in said, (word, users[0])
    assert max(decodes) > len(second) + 0.5 * INPUT_RATE + len(rest), "the merged decode did not read the first part again"
    await companion.close()


async def test_a_gap_between_words_is_not_a_place_to_cut(tmp_path):
    """A gap shorter than a breath (between two words) keeps the whole question in one decode: a cut there would
    split the words around it."""
    part1 = trimmed(speech_16k("I would like to visit", tmp_path, "a"))
    part2 = trimmed(speech_16k("Edinburgh in the spring", tmp_path, "b"))
    heard: list[int] = []
    stt = ListSTT(["I would like to visit Edinburgh in the spring."])
    transcribe = stt.transcribe

    async def recording(samples, *, partial=False, prompt=""):
        heard.append(len(samples))
        return await transcribe(samples, partial=partial, prompt=prompt)

    stt.transcribe = recording  # type: ignore[method-assign]
    companion, pipeline, output, clock = await make(tmp_path, stt, BargeIn("on"), ["Lovely."])
    finals: list[str] = []
    companion.bus.subscribe(Transcript, lambda e: finals.append(e.text) if e.final else None)
    source = QueueSource()
    run = asyncio.create_task(pipeline.run(source))
    await feed_virtual(source, np.concatenate([silence(0.3), part1, silence(0.03), part2, silence(0.6)]), clock)
    await settle(clock, lambda: len(finals) == 1, source=source)
    source.close()
    await settle(clock, run.done)
    await output.close()
    assert finals == ["I would like to visit Edinburgh in the spring."]
    assert heard[-1] >= len(part1) + len(part2), "the last decode did not read the whole question"
    await companion.close()
