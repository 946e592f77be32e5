"""A reply handle: one answer to one message, from the prompt to what the listener heard.

``Companion.reply()`` returns it at once (compare livekit-agents' SpeechHandle).
It owns, as one cancellable unit:

- the LLM stream across every tool round (each round is a :class:`Turn`
  under the reply's id; TurnStarted/TurnEnded are published once per reply);
- the sentence chunker, moderation and reply hygiene (in the Turn);
- the speech: every sentence goes to the voices the router picks for this
  conversation and platform, synthesised while the model still writes;
- history: the user's message before the model runs, and afterwards only
  what was heard (an interrupted reply keeps its heard prefix, flagged).

``interrupt()`` stops all of it wherever it is (writing, calling a tool,
speaking); ``wait()`` returns the :class:`TurnResult`. Text-only callers (web
chat, Discord text, the CLI) get the same handle; it simply has no voices.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from companion.core.prompt import HistoryItem, NewMessage, build_messages, fit_history, history_window, lore_scan, window_step
from companion.core.speech import Speech, Voice
from companion.core.turn import SentenceSink, TokenSink, Turn, TurnResult
from companion.llm.base import GenerationOptions, Message, Priority
from companion.memory.manager import Exchange
from companion.runtime.events import TurnEnded, TurnStarted, UserMessage
from companion.text.chunking import ReplyChunker, Sentence, drop_partial_tag
from companion.text.hygiene import ReplyHygiene, stop_strings
from companion.tools.registry import ToolContext

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.core.engine import Companion

log = logging.getLogger(__name__)

__all__ = ["Reply", "MAX_TOOL_ROUNDS", "CHAT_PLATFORMS", "SPOKEN_PLATFORMS"]

MAX_TOOL_ROUNDS = 4
CHAT_PLATFORMS = ("twitch", "youtube")  # audience chat: quoted, attributed, never instructions
# Replies on these are heard, not read: a minute of speech nobody asked for is worse than a short answer.
SPOKEN_PLATFORMS = ("voice", "stream", "twitch", "youtube", "game", "minecraft")


class Reply:
    """One reply in progress. ``await reply.wait()`` for the result; ``reply.interrupt()`` stops it."""

    def __init__(
        self,
        companion: "Companion",
        text: str,
        *,
        conversation_id: str = "default",
        speaker_id: str = "local",
        speaker_name: str | None = None,
        platform: str = "cli",
        images: Sequence[str] = (),
        on_token: TokenSink | None = None,
        on_sentence: SentenceSink | None = None,
        first_words: int = 0,
        priority: Priority = Priority.REPLY,
        voices: Sequence[Voice] | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.companion = companion
        self.text = text
        self.conversation_id = conversation_id
        self.speaker_id = speaker_id
        self.speaker_name = speaker_name
        self.platform = platform
        self.images = tuple(images)
        self.on_token = on_token
        self.on_sentence = on_sentence
        self.first_words = first_words
        self.priority = priority
        self._voices = voices  # None: the router decides at the first sentence
        self.started = time.perf_counter()
        self.turn: Turn | None = None  # the LLM round in progress
        self.first_turn: Turn | None = None  # its marks time the reply (prompt_ready, first_sentence, ...)
        self.speech: Speech | None = None
        self.interrupted = False
        self.result: TurnResult | None = None
        self._written = asyncio.Event()
        self._task: asyncio.Task[TurnResult] = asyncio.get_running_loop().create_task(self._run(), name=f"reply-{self.id}")

    # -- control -------------------------------------------------------------------

    def interrupt(self) -> str:
        """Stop writing, calling tools and speaking; returns what the listener had heard."""
        if self.interrupted or self._task.done():
            return self.speech.heard() if self.speech is not None else ""
        self.interrupted = True
        if self.turn is not None:
            self.turn.interrupt()
        return self.speech.interrupt() if self.speech is not None else ""

    def _stop(self) -> None:
        self.interrupt()

    @property
    def done(self) -> bool:
        return self._task.done()

    @property
    def writing(self) -> bool:
        """True until the text is complete (the speech may still be playing)."""
        return self.result is None and not self._task.done()

    async def wait(self) -> TurnResult:
        """The result once the reply is over: written, spoken (or stopped), stored."""
        return await asyncio.shield(self._task)

    async def written(self) -> TurnResult:
        """The result as soon as the text is complete, while the speech may still play (adapters that post text)."""
        waiter = asyncio.ensure_future(self._written.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        return self.result if self.result is not None else await self.wait()

    # -- the reply -----------------------------------------------------------------

    def _sentence(self, sentence: Sentence) -> None:
        if self.speech is None and not self.interrupted:
            voices = self._voices or []
            if voices:
                # Where the reply is only heard, stopping the speech stops the reply; where it is also
                # posted as text (Discord), it stops the audio only: the text was delivered whole.
                spoken = self.platform in SPOKEN_PLATFORMS
                self.speech = Speech(voices, on_interrupt=self._stop if spoken else None)
        if self.speech is not None and not self.interrupted:
            self.speech.say(sentence)

    async def _on_sentence(self, sentence: Sentence) -> None:
        self._sentence(sentence)
        if self.on_sentence is not None:
            out = self.on_sentence(sentence)
            if out is not None:
                await out

    async def _run(self) -> TurnResult:
        c = self.companion
        text, conversation_id, speaker_id, platform = self.text, self.conversation_id, self.speaker_id, self.platform
        name = self.speaker_name or (speaker_id if speaker_id != "local" else c.settings.owner_display_name())
        lock = c._locks.setdefault(conversation_id, asyncio.Lock())  # noqa: SLF001 - the engine's per-conversation order
        async with lock:
            c._active[conversation_id] = self  # noqa: SLF001 - what Companion.interrupt(conversation) stops
            c.bus.publish(UserMessage(conversation_id, speaker_id, text, platform))
            window = c.settings.llm.history_messages
            total = await c.history.count(conversation_id)
            recent = await c.history.recent(conversation_id, history_window(total, window))
            conversation_start = total <= window
            items = [
                HistoryItem(m.role, as_prompted(m.content, m.interrupted and m.role == "assistant"), m.speaker_name)
                for m in recent
                if m.role in ("user", "assistant") and (m.content.strip() or not m.interrupted)
            ]
            budgeted = fit_history(
                items, c.settings.llm.history_tokens, first_index=total - len(items), step=window_step(window)
            )
            conversation_start = conversation_start and len(budgeted) == len(items)
            items = budgeted
            person, forget, memory_block = None, None, ""
            if c.memory is not None:
                c.memory.turn_started()
                try:
                    person, forget, memory_block = await c.memory.prepare(
                        speaker_id, text, conversation_id=conversation_id, platform=platform, speaker_name=name,
                        earlier=len(items) < total,  # older messages are out of the prompt
                    )
                except Exception:
                    log.exception("memory recall failed; answering without it")
                if forget == "all":
                    await c.history.forget_speaker(speaker_id)  # memories went in prepare(); the log goes too
                    items = [i for i in items if i.role != "user" or i.speaker_name != name]

            book = c.character.book
            lore = None
            if book is not None and book.uses_regex:
                # Card regexes are time-limited, but still run off the loop: other replies keep flowing.
                lore = await asyncio.to_thread(book.activate, lore_scan(items, NewMessage(text, name)))

            def prompt(items: list[HistoryItem], start: bool) -> list[Message]:
                return build_messages(
                    c.character, items, NewMessage(text, name, self.images), conversation_start=start,
                    seed=conversation_id, memories=memory_block, chat_mode=platform in CHAT_PLATFORMS, lore=lore,
                )

            messages = prompt(items, conversation_start)
            # Stored before the LLM runs: a message is never lost to a failing provider.
            # (Except the request to be forgotten itself.)
            if forget != "all":
                await c.history.add(conversation_id, "user", text, speaker_id=speaker_id, speaker_name=name, platform=platform)
            if c.memory is not None and person is not None and forget is None and self.priority == Priority.REPLY:
                c.memory.heard(person, conversation_id, text)  # their own words, remembered with any model
            ctx = ToolContext(speaker_id, platform, conversation_id, c.permission_level(speaker_id, platform))
            offered = c.tools.specs_for(ctx) if c.tools is not None and c._llm_tools_ok() else []  # noqa: SLF001
            chunker = ReplyChunker(c.settings.text.first_clause_chars, c.settings.text.max_sentence_chars, self.first_words)
            names = (name, c.settings.companion.user_name)
            options = GenerationOptions(
                max_tokens=reply_budget(c.settings, platform),
                temperature=c.settings.llm.temperature,
                tools=tuple(offered),
                priority=self.priority,
                stop=tuple(stop_strings(names, c.character.name)),
            )
            hygiene = ReplyHygiene(names, c.character.name)
            results: list[TurnResult] = []
            round_ = 0
            if self._voices is None:
                self._voices = c.voices.route(conversation_id, platform)  # where this reply is heard
            c.bus.publish(TurnStarted(self.id, conversation_id, speaker_id))
            try:
                while True:
                    turn = Turn(
                        c.llm, messages, bus=c.bus, conversation_id=conversation_id, speaker_id=speaker_id,
                        options=options,
                        chunker=chunker,  # shared across tool rounds: sentence numbers keep counting
                        on_token=self.on_token, on_sentence=self._on_sentence,
                        started_at=self.started if round_ == 0 else None,
                        moderate=c.moderator.check_output if c.moderator is not None else None,
                        hygiene=hygiene, turn_id=self.id, lifecycle=False,
                    )
                    turn.mark("prompt_ready")
                    self.turn = turn
                    if self.first_turn is None:
                        self.first_turn = turn
                    if self.interrupted:
                        turn.interrupt()
                    part = await turn.run()
                    if part.overflow and round_ == 0 and not part.reply and items:
                        # The conversation outgrew the model's context: leave the older half out and ask again.
                        items = items[len(items) // 2 + 1 :] if len(items) > 1 else []
                        if not c._warned_overflow:  # noqa: SLF001
                            c._warned_overflow = True  # noqa: SLF001
                            log.warning("%s; older messages are left out of the prompt", part.error)
                        messages = prompt(items, False)
                        self.first_turn = None
                        continue
                    results.append(part)
                    if not part.tool_calls or part.interrupted or part.error or c.tools is None or self.interrupted:
                        break
                    if round_ == MAX_TOOL_ROUNDS:
                        log.warning("reply %s: still calling tools after %d rounds; stopping there", self.id, round_)
                        break
                    messages = messages + await c._run_tools(part, ctx)  # noqa: SLF001
                    options = replace(options, response_format=None)
                    round_ += 1
                result = _merge(results)
                if self.interrupted:
                    result.interrupted = True
                self.result = result
                self._written.set()
                c.bus.publish(
                    TurnEnded(self.id, conversation_id, result.reply, result.interrupted, result.error, dict(result.timings_ms))
                )
                heard = None
                if self._voices and platform in SPOKEN_PLATFORMS:
                    # Only heard, never read: history keeps what the listener heard.
                    if self.speech is not None:
                        heard = await self.speech.wait()
                    if heard is None and result.interrupted:
                        heard = self.speech.heard() if self.speech is not None else ""
                elif self.speech is not None:
                    await self.speech.wait()  # posted as text too: history keeps what was written
            finally:
                if self.speech is not None and not self.speech.done:
                    self.speech.interrupt()  # cancelled from outside (shutdown): stop the audio too
                if c._active.get(conversation_id) is self:  # noqa: SLF001
                    del c._active[conversation_id]  # noqa: SLF001
                if c.memory is not None:
                    c.memory.turn_ended()
            stored = result.reply
            if heard is not None:
                stored = heard.strip()
                result.interrupted = True
                result.spoken = stored
            if result.error:
                result.interrupted = True  # a reply cut by a failure is kept as a fragment, never as a complete answer
            if result.interrupted:
                stored = drop_partial_tag(stored)
            if c.memory is not None and person is not None and forget is None and not result.error and stored:
                c.memory.remember(Exchange(person, conversation_id, name, text, stored))
            if stored:
                await c.history.add(
                    conversation_id, "assistant", stored, speaker_id="companion", speaker_name=c.character.name,
                    platform=platform, interrupted=result.interrupted,
                )
            if result.error:
                log.error("reply %s in %s failed: %s", result.turn_id, conversation_id, result.error)
            return result


def as_prompted(content: str, interrupted: bool) -> str:
    """A history message as the model reads it: a reply that was cut off ends with "…", so it is not taken as complete."""
    return content.rstrip() + "…" if interrupted and content.strip() else content


def reply_budget(settings: "Settings", platform: str) -> int:
    """Tokens a reply may take where it is heard (short) or read (longer)."""
    llm = settings.llm
    return llm.spoken_max_tokens if platform in SPOKEN_PLATFORMS else llm.max_tokens


def _merge(parts: list[TurnResult]) -> TurnResult:
    """One result for a reply written over several tool rounds."""
    if len(parts) == 1:
        return parts[0]
    first, last = parts[0], parts[-1]
    timings = dict(first.timings_ms)
    timings["end"] = sum(p.timings_ms.get("end", 0.0) for p in parts)
    return TurnResult(
        turn_id=first.turn_id,
        reply=" ".join(p.reply for p in parts if p.reply).strip(),
        sentences=[s for p in parts for s in p.sentences],
        emotions=[e for p in parts for e in p.emotions],
        interrupted=last.interrupted,
        error=last.error,
        timings_ms=timings,
        tool_calls=tuple(c for p in parts for c in p.tool_calls),
    )
