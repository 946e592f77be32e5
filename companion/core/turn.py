"""A Turn owns one reply: LLM stream -> sentence chunker -> outputs, cancellable as a unit.

Barge-in, shutdown and "stop" all come down to ``turn.interrupt()``: one
cancellation point, and the result still says exactly what had been produced.
Each stage is timestamped so logs, the web UI and ``bench/`` share one source
of truth about latency.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from companion.llm.base import LLM, GenerationOptions, LLMContextOverflow, LLMError, LLMPreempted, Message, ToolCall, aclose
from companion.runtime.bus import EventBus
from companion.runtime.events import EmotionCue, SentenceReady, TokenStreamed, TurnEnded, TurnStarted
from companion.text.actions import split_actions
from companion.text.chunking import DisplayFilter, ReplyChunker, Sentence, extract_emotions, strip_reasoning
from companion.text.hygiene import ReplyHygiene

__all__ = ["Turn", "TurnResult"]

TokenSink = Callable[[str], Awaitable[None] | None]
SentenceSink = Callable[[Sentence], Awaitable[None] | None]


@dataclass(slots=True)
class TurnResult:
    turn_id: str
    reply: str
    sentences: list[Sentence]
    emotions: list[str]
    interrupted: bool
    error: str | None
    timings_ms: dict[str, float]
    tool_calls: tuple[ToolCall, ...] = field(default_factory=tuple)
    spoken: str | None = None  # voice: the part the listener heard, when they interrupted
    overflow: bool = False  # the prompt did not fit the model's context window (error says so)
    written: str = ""  # what the model wrote, before hygiene (logs and bench/reply_quality.py: what was left out)


class Turn:
    """One reply in progress. ``await turn.run()`` drives it; ``interrupt()`` stops it."""

    def __init__(
        self,
        llm: LLM,
        messages: list[Message],
        *,
        bus: EventBus | None = None,
        conversation_id: str = "default",
        speaker_id: str = "local",
        options: GenerationOptions | None = None,
        chunker: ReplyChunker | None = None,
        on_token: TokenSink | None = None,
        on_sentence: SentenceSink | None = None,
        started_at: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
        moderate: Callable[[str], str] | None = None,
        hygiene: ReplyHygiene | None = None,
        opening: str = "",
        turn_id: str | None = None,
        lifecycle: bool = True,
    ) -> None:
        self.id = turn_id or uuid.uuid4().hex[:12]
        # A reply over several tool rounds runs one Turn per round, under the reply's id; the reply
        # (reply.py) then announces its start and end once, so listeners see one unit per reply.
        self.lifecycle = lifecycle
        self.llm = llm
        self.messages = messages
        self.bus = bus
        self.conversation_id = conversation_id
        self.speaker_id = speaker_id
        self.options = options or GenerationOptions()
        self.chunker = chunker or ReplyChunker()
        self.on_token = on_token
        self.on_sentence = on_sentence
        self.moderate = moderate  # per sentence, before it is shown, spoken or posted
        self.moderated = False
        self.truncated = False  # cut back to the last complete sentence (reply budget reached)
        self.hygiene = hygiene  # shared across tool rounds, like the chunker
        self._written: list[str] = []  # the model's own text, before hygiene
        self.opening = opening  # said first; the model continues it (its messages end with it as an assistant prefill)
        self._clock = clock
        self.t0 = started_at if started_at is not None else clock()
        self.marks: dict[str, float] = {}
        self.provider_seconds = 0.0  # time spent waiting on the LLM, to isolate engine overhead
        self._raw: list[str] = []
        self._display = DisplayFilter()
        self.sentences: list[Sentence] = []
        self.tool_calls: tuple[ToolCall, ...] = ()
        self.error: str | None = None
        self.interrupted = False
        self.overflow = False
        self.finish_reason: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._interrupt_requested = False
        self.result: TurnResult | None = None

    # -- control --------------------------------------------------------------

    def mark(self, stage: str) -> None:
        """Record the first time ``stage`` happened (later voice stages use this too)."""
        self.marks.setdefault(stage, self._clock())

    def interrupt(self) -> None:
        """Stop the reply now; ``run()`` returns a result marked interrupted."""
        if self.result is not None:
            return  # finished: its task has moved on (e.g. to playing the reply) and must not be cancelled
        self._interrupt_requested = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    @property
    def done(self) -> bool:
        return self.result is not None

    async def run(self) -> TurnResult:
        self._task = asyncio.current_task()
        self.mark("start")
        if self.bus and self.lifecycle:
            self.bus.publish(TurnStarted(self.id, self.conversation_id, self.speaker_id))
        try:
            if self._interrupt_requested:
                raise asyncio.CancelledError
            await self._generate()
        except asyncio.CancelledError:
            self.interrupted = True
            if not self._interrupt_requested:
                self._finish()
                raise  # cancelled from outside (shutdown): let it propagate
            if self._task is not None:
                self._task.uncancel()
        except LLMPreempted:
            self.interrupted = True  # more urgent work took the model: an interruption, not a failure
        except LLMError as exc:
            self.error = str(exc)
            self.overflow = isinstance(exc, LLMContextOverflow)
        return self._finish()

    # -- internals ------------------------------------------------------------

    async def _generate(self) -> None:
        if self.opening:
            self._written.append(self.opening)
            text = self.hygiene.feed(self.opening) if self.hygiene is not None else self.opening
            if text:
                await self._on_text(text)
        stream = self.llm.stream(self.messages, self.options).__aiter__()
        try:
            while True:
                waited = self._clock()
                try:
                    chunk = await stream.__anext__()
                except StopAsyncIteration:
                    self.provider_seconds += self._clock() - waited
                    break
                self.provider_seconds += self._clock() - waited
                if chunk.finish_reason:
                    self.finish_reason = chunk.finish_reason
                if chunk.tool_calls:
                    self.tool_calls += chunk.tool_calls
                if chunk.text:
                    self._written.append(chunk.text)
                    text = self.hygiene.feed(chunk.text) if self.hygiene is not None else chunk.text
                    if text:
                        await self._on_text(text)
                    if self.hygiene is not None and self.hygiene.stopped:
                        break  # closing the stream stops the model (a llama.cpp slot is freed)
        except LLMError:
            if self.hygiene is not None:  # the provider failed mid-reply: what hygiene still held is part of the fragment
                tail = self.hygiene.finish()
                if tail:
                    await self._on_text(tail)
            raise
        finally:
            await aclose(stream)
        if self.hygiene is not None:
            tail = self.hygiene.finish()
            if tail:
                await self._on_text(tail)
        self.mark("llm_done")
        rest = self.chunker.finish()
        if self.finish_reason == "length" and self.sentences:
            # The reply budget ran out mid-sentence: end at the last complete one, never mid-word.
            self.truncated = True
            rest = []
        for sentence in rest:
            await self._emit(sentence)
        tail = self._display.finish()
        if tail and self.on_token:
            await _call(self.on_token, tail)

    async def _on_text(self, text: str) -> None:
        if not self._raw:
            self.mark("first_token")
        self._raw.append(text)
        shown = self._display.feed(text)
        if shown:
            if self.bus:
                self.bus.publish(TokenStreamed(self.id, shown))
            if self.on_token:
                await _call(self.on_token, shown)
        for sentence in self.chunker.feed(text):
            await self._emit(sentence)

    async def _emit(self, sentence: Sentence) -> None:
        if self.moderate is not None and sentence.text:
            safe = self.moderate(sentence.text)
            if safe != sentence.text:
                self.moderated = True
                sentence = Sentence(sentence.index, safe, safe, sentence.emotions)
        if not self.sentences:
            self.mark("first_sentence")
        self.sentences.append(sentence)
        if self.bus:
            for emotion in sentence.emotions:
                self.bus.publish(EmotionCue(self.id, emotion))
            self.bus.publish(
                SentenceReady(self.id, sentence.index, sentence.text, sentence.speech, sentence.emotions)
            )
        if self.on_sentence:
            await _call(self.on_sentence, sentence)

    def _finish(self) -> TurnResult:
        if self.result is not None:
            return self.result
        self.mark("end")
        reply, emotions = extract_emotions(strip_reasoning("".join(self._raw)))
        reply, _, acted = split_actions(reply)  # stage directions written as actions, as the sentences show them
        emotions += acted
        if self.moderated or self.truncated:  # what was actually said: blocked sentences replaced, no cut-off tail
            reply = " ".join(s.text for s in self.sentences if s.text)
        timings = {stage: round((t - self.t0) * 1000, 3) for stage, t in self.marks.items() if stage != "start"}
        total = self.marks["end"] - self.t0
        timings["provider"] = round(self.provider_seconds * 1000, 3)
        timings["overhead"] = round((total - self.provider_seconds) * 1000, 3)
        self.result = TurnResult(
            turn_id=self.id,
            reply=reply,
            sentences=list(self.sentences),
            emotions=emotions,
            # Out of budget before one whole sentence: a fragment, not an answer.
            interrupted=self.interrupted or (self.finish_reason == "length" and not self.sentences),
            error=self.error,
            timings_ms=timings,
            tool_calls=self.tool_calls,
            overflow=self.overflow,
            written="".join(self._written),
        )
        if self.bus and self.lifecycle:
            self.bus.publish(
                TurnEnded(self.id, self.conversation_id, reply, self.interrupted, self.error, dict(timings))
            )
        return self.result


async def _call(fn: Callable[..., Awaitable[None] | None], arg: object) -> None:
    result = fn(arg)
    if result is not None and asyncio.iscoroutine(result):
        await result
