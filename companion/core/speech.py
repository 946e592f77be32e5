"""Speaking: sentences -> text-to-speech -> every output that should hear them, stopped as one unit.

The engine decides *what* is said. This module decides *where* (the
:class:`VoiceRouter`: one place that knows every voice the companion has right
now, the local speaker, each browser voice session, each Discord voice
channel, and which replies each one speaks) and *how* (:class:`Speech`:
sentence n+1 is synthesised while sentence n plays, ``interrupt()`` drops all
queued audio at once, and the words a listener actually heard are known).

Nothing here loads a speech model or opens a device: synthesisers and outputs
come in through the two protocols below, so the engine imports nothing from
``voice/``. :class:`companion.voice.playback.PlaybackBuffer` is the
:class:`AudioOutput` behind the speaker, the browser's paced stream and
Discord's audio source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from companion.core.platforms import platform as platform_traits
from companion.text.chunking import Sentence

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

__all__ = ["AudioOutput", "Speech", "Synthesizer", "Voice", "VoiceRouter", "speak_text"]



class Synthesizer(Protocol):
    """Text to mono float32 audio, chunk by chunk (every ``voice.tts`` engine)."""

    sample_rate: int

    def synthesize(self, text: str) -> AsyncIterator["np.ndarray"]: ...


class AudioOutput(Protocol):
    """Somewhere speech is heard. It plays at its own pace and can say which words were heard."""

    first_play_at: float | None  # when the first sample of the current speech was played

    @property
    def busy(self) -> bool: ...

    def begin(self) -> None:
        """A new speech starts: forget what the previous one played."""

    def write(self, index: int, text: str, samples: "np.ndarray", rate: int) -> None:
        """Queue audio of sentence ``index`` (saying ``text``) at ``rate``."""

    def end_sentence(self, index: int) -> None:
        """No more audio comes for sentence ``index``."""

    def clear(self) -> str:
        """Drop everything not yet played; returns what was heard."""

    def heard(self) -> str:
        """The words played so far."""

    async def wait_for_playout(self) -> None:
        """Return once everything queued has been played."""


@dataclass(eq=False)
class Voice:
    """One place the companion is heard, and which replies it speaks."""

    name: str
    output: AudioOutput
    tts: Synthesizer
    owns: Callable[[str], bool] = lambda conversation_id: False  # conversations whose replies are spoken here
    broadcast: bool = True  # also speaks to the audience: stream answers, game commentary, announcements
    muted: bool = False
    floor: asyncio.Lock = field(default_factory=asyncio.Lock)  # one speech at a time
    speech: "Speech | None" = None  # the speech holding the floor


class VoiceRouter:
    """Every active voice; the one place that decides which voices speak a reply."""

    def __init__(self) -> None:
        self._voices: list[Voice] = []

    def add(self, voice: Voice) -> Callable[[], None]:
        """Register ``voice``; returns the function that removes it (and stops what it is saying)."""
        self._voices.append(voice)

        def remove() -> None:
            if voice in self._voices:
                self._voices.remove(voice)
            if voice.speech is not None:
                voice.speech.drop(voice)

        return remove

    @property
    def voices(self) -> list[Voice]:
        return list(self._voices)

    def route(self, conversation_id: str, platform: str) -> list[Voice]:
        """The voices that speak a reply in ``conversation_id`` on ``platform``.

        A voice speaks the conversations it owns (the person talking to it), and,
        when it broadcasts, everything said to the audience.
        """
        return [
            v for v in self._voices
            if not v.muted and (v.owns(conversation_id) or (v.broadcast and platform_traits(platform).broadcast))
        ]

    def find(self, output: AudioOutput) -> Voice | None:
        return next((v for v in self._voices if v.output is output), None)

    def interrupt(self, output: AudioOutput) -> str:
        """Barge-in heard on ``output``: stop the speech playing there (and the reply writing it); what was heard."""
        voice = self.find(output)
        if voice is not None and voice.speech is not None:
            return voice.speech.interrupt()
        return output.clear()

    def busy(self) -> bool:
        """True while any voice is still playing."""
        return any(v.output.busy or v.speech is not None for v in self._voices)


class Speech:
    """One utterance on a set of voices: sentences in, audio out, interruptible, with what was heard.

    Sentences may arrive while the model still writes (``say``), and ``finish()``
    says there are no more. The speech takes each voice's floor before its first
    sentence is synthesised and keeps it until the audio has played, so two
    speeches never mix on one output.
    """

    def __init__(
        self,
        voices: Sequence[Voice],
        *,
        on_interrupt: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        tts: Synthesizer | None = None,
    ) -> None:
        self.voices = sorted(dict.fromkeys(voices), key=id)  # a fixed order to take floors in: no deadlock
        self.on_interrupt = on_interrupt  # a barge-in on an output stops the reply being written too
        self._clock = clock
        self.tts = tts  # another voice than each output's own (a group's co-host speaks in hers, on the same outputs)
        self._queue: asyncio.Queue[Sentence | None] = asyncio.Queue()
        self.interrupted = False
        self.first_audio_at: float | None = None  # first synthesised chunk
        self.tts_first_seconds = 0.0  # synthesis time of the first chunk
        self.first_play_at: float | None = None  # first sample heard on any voice
        self._heard: dict[int, str] = {}  # id(voice) -> heard text, kept when a voice is released
        self._held: list[Voice] = []
        self._finished = False
        self._count = 0  # sentences said (numbers plain-text ones)
        self._task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._run(), name="speech")

    # -- producer side -----------------------------------------------------------

    def say(self, sentence: Sentence | str) -> None:
        if self._finished:
            raise RuntimeError("say() after finish(): start a new Speech")
        if isinstance(sentence, str):
            sentence = Sentence(self._count, sentence, sentence, ())
        self._count = max(self._count, sentence.index) + 1
        if sentence.speech.strip() and not self.interrupted:
            self._queue.put_nowait(sentence)

    def finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._queue.put_nowait(None)

    # -- control -------------------------------------------------------------------

    def interrupt(self) -> str:
        """Stop now: nothing more is synthesised, queued audio is dropped on every voice. Returns what was heard."""
        if not self.interrupted:
            self.interrupted = True
            for voice in self._held:
                self._heard[id(voice)] = voice.output.clear()
            self._task.cancel()
            if self.on_interrupt is not None:
                self.on_interrupt()
        return self.heard()

    def drop(self, voice: Voice) -> None:
        """``voice`` went away (a browser closed, Discord disconnected): stop speaking there only."""
        if voice in self._held:
            self._heard[id(voice)] = voice.output.clear()
        if voice in self.voices:
            self.voices.remove(voice)
        if not self.voices:
            self.interrupt()

    @property
    def done(self) -> bool:
        return self._task.done()

    def started_playing(self) -> bool:
        """True once a listener has heard any of it."""
        return self.first_play_at is not None or any(v.output.first_play_at is not None for v in self._held)

    def heard(self) -> str:
        """The longest prefix any listener heard (several voices play the same words)."""
        texts = list(self._heard.values()) + [v.output.heard() for v in self._held]
        return max(texts, key=len, default="")

    async def wait(self) -> str | None:
        """Return once everything was played (None: every word was heard) or the speech was stopped (what was heard)."""
        self.finish()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.heard() if self.interrupted else None

    # -- internals -----------------------------------------------------------------

    async def _run(self) -> None:
        sentence = await self._queue.get()
        if sentence is None:
            return
        async with contextlib.AsyncExitStack() as floors:
            for voice in list(self.voices):
                await floors.enter_async_context(voice.floor)
                if voice not in self.voices:  # dropped while we waited for it
                    continue
                voice.speech = self
                voice.output.begin()
                self._held.append(voice)
                floors.callback(self._release, voice)
            while sentence is not None:
                await self._speak(sentence)
                sentence = await self._queue.get()
            for voice in list(self._held):
                await voice.output.wait_for_playout()

    def _release(self, voice: Voice) -> None:
        if voice.output.first_play_at is not None:
            self.first_play_at = min(self.first_play_at or voice.output.first_play_at, voice.output.first_play_at)
        self._heard[id(voice)] = voice.output.heard()
        if voice.speech is self:
            voice.speech = None
        if voice in self._held:
            self._held.remove(voice)

    async def _speak(self, sentence: Sentence) -> None:
        """Synthesise one sentence once per engine, and write it to every voice that uses that engine."""
        text = sentence.speech.strip()
        engines: dict[int, tuple[Synthesizer, list[Voice]]] = {}
        for voice in self._held:
            tts = self.tts or voice.tts
            engines.setdefault(id(tts), (tts, []))[1].append(voice)
        for tts, voices in engines.values():
            started = self._clock()
            try:
                async for samples in tts.synthesize(text):
                    if self.first_audio_at is None:
                        self.first_audio_at = self._clock()
                        self.tts_first_seconds = self.first_audio_at - started
                    for voice in voices:
                        if voice in self._held:
                            voice.output.write(sentence.index, text, samples, tts.sample_rate)
            except Exception as exc:  # noqa: BLE001 - a TTS failure loses the audio of a sentence, never the reply
                log.error("tts: %s (shown but not spoken: %r)", exc, text[:60])
            for voice in voices:
                voice.output.end_sentence(sentence.index)


async def speak_text(voices: Sequence[Voice], text: str) -> str | None:
    """Say a text that is already complete (an announcement, a line typed in): None when all of it was heard."""
    from companion.text.chunking import ReplyChunker

    if not voices:
        return None
    speech = Speech(voices)
    chunker = ReplyChunker(first_clause_chars=16)
    for sentence in chunker.feed(text) + chunker.finish():
        speech.say(sentence)
    return await speech.wait()

