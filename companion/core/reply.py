"""A reply handle: one answer to one message, from the prompt to what the listener heard.

``Companion.reply()`` returns it at once (compare livekit-agents' SpeechHandle). It knows the engine only
through :class:`ReplyHost`, the few things a reply needs, so the two do not import each other.
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
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from companion.core.floor import Floor
from companion.core.platforms import platform as platform_traits
from companion.core.prompt import (
    HistoryItem,
    NewMessage,
    build_messages,
    fit_history,
    history_window,
    lore_scan,
    prompt_language,
    window_step,
)
from companion.core.speech import Speech, Synthesizer, Voice, VoiceRouter
from companion.core.turn import SentenceSink, TokenSink, Turn, TurnResult
from companion.llm.base import LLM, GenerationOptions, Message, Priority
from companion.llm.slot_state import conversation_key
from companion.memory.grounding import opening_for
from companion.memory.manager import Exchange
from companion.runtime.events import TurnEnded, TurnStarted, UserMessage
from companion.text.chunking import ReplyChunker, Sentence, drop_partial_tag
from companion.text.hygiene import ReplyHygiene, stop_strings
from companion.tools.registry import ToolContext, ToolRegistry

if TYPE_CHECKING:
    from companion.character.lorebook import ActivatedLore
    from companion.character.persona import Character
    from companion.config import Settings
    from companion.core.history import HistoryStore
    from companion.core.moderation import Moderator
    from companion.memory.manager import MemoryManager
    from companion.runtime.bus import EventBus

NEXT_WORDS = "\u2063next words\u2063"  # where the next message's words will stand: a read-ahead stops there
RECENT_REPLIES = 3  # her replies a new one may not copy a sentence from
SMALL_MODEL_WRITTEN_TOKENS = 80  # about 310 characters
QUOTED_FOLLOW_UP_TOKENS = 48  # after an answer from their own words: a sentence or two, not a story that may contradict it

log = logging.getLogger(__name__)

__all__ = ["Reply", "ReplyHost", "MAX_TOOL_ROUNDS", "reply_budget", "as_prompted"]

MAX_TOOL_ROUNDS = 4


class ReplyHost(Protocol):
    """What a reply needs from the engine that starts it (``Companion`` is one): read-only views and four calls."""

    @property
    def settings(self) -> Settings: ...
    @property
    def llm(self) -> LLM: ...
    @property
    def character(self) -> Character: ...
    @property
    def history(self) -> HistoryStore: ...
    @property
    def bus(self) -> EventBus: ...
    @property
    def memory(self) -> MemoryManager | None: ...
    @property
    def voices(self) -> VoiceRouter: ...
    @property
    def moderator(self) -> Moderator | None: ...
    @property
    def floor(self) -> Floor[Reply]: ...
    @property
    def tools(self) -> ToolRegistry | None: ...

    def permission_level(self, speaker_id: str, platform: str) -> str: ...

    def tool_specs(self, ctx: ToolContext) -> list[dict[str, Any]]:
        """The tools this speaker may have the model call (none when the model cannot call tools)."""
        ...

    async def run_tools(self, part: TurnResult, ctx: ToolContext) -> list[Message]:
        """Run the calls the model asked for; the messages that tell it the results."""
        ...

    def context_overflowed(self, error: str) -> None:
        """The conversation outgrew the model's context (older messages will be left out): say so once."""
        ...

    def read_ahead(self, work: Coroutine[Any, Any, None]) -> None:
        """Run the reading ahead of a conversation's next prompt in the background; stopped at shutdown."""
        ...


@dataclass
class _Prompt:
    """Everything the generation stage needs, made by the preparation stage."""

    name: str  # how the speaker is called
    items: list[HistoryItem]
    messages: list[Message]
    lore: ActivatedLore | None
    memory_block: str
    person: Any  # the memory's person, when memory is on
    forget: str | None
    ctx: ToolContext
    options: GenerationOptions
    chunker: ReplyChunker
    hygiene: ReplyHygiene
    opening: str = ""  # the reply's first sentence, from their own remembered words (memory/grounding.py)


class Reply:
    """One reply in progress. ``await reply.wait()`` for the result; ``reply.interrupt()`` stops it."""

    def __init__(
        self,
        host: ReplyHost,
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
        others: Sequence[str] = (),
        answering: str = "",
        tts: Synthesizer | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.host = host
        self.text = text
        self.conversation_id = conversation_id
        self.speaker_id = speaker_id
        self.speaker_name = speaker_name
        self.platform = platform
        self.traits = platform_traits(platform)
        self.images = tuple(images)
        self.on_token = on_token
        self.on_sentence = on_sentence
        self.first_words = first_words
        self.priority = priority
        self._voices = voices  # None: the router decides when the prompt is ready
        # In a group (companion.group): the other characters, whose lines she reads as theirs, not her own; and
        # whether this reply answers a line already in the history (another character's, or a person's message
        # an earlier character answered first): then the message is neither stored again nor learned from.
        self.others = tuple(others)
        self.answering = answering
        self.tts = tts  # her own voice on the outputs the reply is routed to (a group's co-host), else theirs
        self.started = time.perf_counter()
        self.turn: Turn | None = None  # the LLM round in progress
        self.first_turn: Turn | None = None  # its marks time the reply (prompt_ready, first_sentence, ...)
        self.speech: Speech | None = None
        self.interrupted = False
        self.result: TurnResult | None = None
        self._written = asyncio.Event()
        self.task: asyncio.Task[TurnResult] = asyncio.get_running_loop().create_task(self._run(), name=f"reply-{self.id}")

    # -- control -------------------------------------------------------------------

    def interrupt(self) -> str:
        """Stop writing, calling tools and speaking; returns what the listener had heard."""
        if self.interrupted or self.task.done():
            return self.speech.heard() if self.speech is not None else ""
        self.interrupted = True
        if self.turn is not None:
            self.turn.interrupt()
        return self.speech.interrupt() if self.speech is not None else ""

    def _stop(self) -> None:
        self.interrupt()

    @property
    def done(self) -> bool:
        return self.task.done()

    @property
    def writing(self) -> bool:
        """True until the text is complete (the speech may still be playing)."""
        return self.result is None and not self.task.done()

    async def wait(self) -> TurnResult:
        """The result once the reply is over: written, spoken (or stopped), stored."""
        return await asyncio.shield(self.task)

    async def written(self) -> TurnResult:
        """The result as soon as the text is complete, while the speech may still play (adapters that post text)."""
        waiter = asyncio.ensure_future(self._written.wait())
        try:
            await asyncio.wait({waiter, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        return self.result if self.result is not None else await self.wait()

    # -- the reply: prepare the prompt, generate (with tool rounds), hear it out, remember ----------------

    async def _run(self) -> TurnResult:
        host = self.host
        async with host.floor.take(self.conversation_id, self):
            if not self.answering:
                host.bus.publish(UserMessage(self.conversation_id, self.speaker_id, self.text, self.platform))
            prompt = await self._prepare()
            if self._voices is None:
                self._voices = host.voices.route(self.conversation_id, self.platform)  # where this reply is heard
            host.bus.publish(TurnStarted(self.id, self.conversation_id, self.speaker_id, host.character.display_name))
            try:
                result = await self._generate(prompt)
                heard = await self._hear_out(result)
            finally:
                if self.speech is not None and not self.speech.done:
                    self.speech.interrupt()  # cancelled from outside (shutdown): stop the audio too
                host.floor.release(self.conversation_id, self)
                if host.memory is not None:
                    host.memory.turn_ended()
            stored = await self._remember(prompt, result, heard)
            # Nothing stored (taken back before a word was heard): the cache already ends where the next prompt goes on.
            if stored and not self.others and not self.answering and prompt.forget is None and prompt.options.cache_key:
                host.read_ahead(self._prefill_next(prompt))
            return result

    async def _prepare(self) -> _Prompt:
        """History that fits, memories of this person, lore: the prompt; the person's message stored before the model runs."""
        host, settings = self.host, self.host.settings
        text, conversation_id, speaker_id, platform = self.text, self.conversation_id, self.speaker_id, self.platform
        name = self.speaker_name or (speaker_id if speaker_id != "local" else settings.owner_display_name())
        items, total = await self._history()
        if self.answering:
            # The line she answers is the new message, not history as well. It is the last line, or the one before a
            # line that came after it meanwhile (another character's, cut off by a barge-in): looked for in both.
            for back in range(len(items) - 1, max(-1, len(items) - 3), -1):
                if items[back].content.strip() == text.strip():
                    items = items[:back] + items[back + 1:]
                    break
        items, conversation_start = await self._fit(items, total)
        person, forget, memory_block = None, None, ""
        remembered: list[tuple[str, float]] = []
        if host.memory is not None:
            host.memory.turn_started()
            try:
                if not self.answering:  # another character's line: no one to recall (or rename the person after)
                    person, forget, memory_block = await host.memory.prepare(
                        speaker_id, text, conversation_id=conversation_id, platform=platform, speaker_name=name,
                        earlier=len(items) < total,  # older messages are out of the prompt
                        recalled=remembered,
                        shown=[i.content for i in items if i.role == "user"],  # not quoted to the model twice
                    )
            except Exception:
                log.exception("memory recall failed; answering without it")
            if forget == "all":
                await host.history.forget_speaker(speaker_id)  # memories went in prepare(); the log goes too
                items = [i for i in items if i.role != "user" or i.speaker_name != name]
        lore = await self._lore(items, NewMessage(text, name))
        # Stored before the LLM runs: a message is never lost to a failing provider (except the request to be forgotten).
        if forget != "all" and not self.answering:
            await host.history.add(conversation_id, "user", text, speaker_id=speaker_id, speaker_name=name, platform=platform)
        if host.memory is not None and person is not None and forget is None and self.priority == Priority.REPLY and not self.answering:
            host.memory.heard(person, conversation_id, text)  # their own words, remembered with any model
        ctx = ToolContext(speaker_id, platform, conversation_id, host.permission_level(speaker_id, platform))
        names = (name, settings.companion.user_name, *self.others)
        options = GenerationOptions(
            max_tokens=reply_budget(settings, platform, small=bool(getattr(host.llm, "small_model", False))),
            temperature=settings.llm.temperature,
            tools=tuple(host.tool_specs(ctx)),
            priority=self.priority,
            stop=tuple(stop_strings(names, host.character.name)),
            # a group: each character's prompt differs from its first token, so each keeps her own cached state
            cache_key=conversation_key(f"{conversation_id}#{host.character.display_name}" if self.others else conversation_id),
        )
        prompt = _Prompt(
            name, items, [], lore, memory_block, person, forget, ctx, options,
            chunker=ReplyChunker(settings.text.first_clause_chars, settings.text.max_sentence_chars, self.first_words),
            # her last few replies: a sentence copied from them is left out (a small model opens every reply alike)
            hygiene=ReplyHygiene(
                names, host.character.name, message=text,
                recent_replies=[i.content for i in items if i.role == "assistant"][-RECENT_REPLIES:],
            ),
        )
        if remembered and not self.images and self._quote_answers():
            prompt.opening = opening_for(text, remembered) or ""
            if prompt.opening:
                # a direct answer from their own words, then a short follow-up from the model
                prompt.options = replace(prompt.options, max_tokens=min(prompt.options.max_tokens, QUOTED_FOLLOW_UP_TOKENS))
        prompt.messages = self._messages(prompt, conversation_start)
        return prompt

    async def _history(self) -> tuple[list[HistoryItem], int]:
        """The conversation's recent messages as the prompt shows them, and how many it holds in all."""
        history, window = self.host.history, self.host.settings.llm.history_messages
        total = await history.count(self.conversation_id)
        recent = await history.recent(self.conversation_id, history_window(total, window))
        items = [
            HistoryItem(m.role, as_prompted(m.content, m.interrupted and m.role == "assistant"), m.speaker_name)
            for m in recent
            if m.role in ("user", "assistant") and (m.content.strip() or not m.interrupted)
        ]
        return items, total

    async def _fit(self, items: list[HistoryItem], total: int) -> tuple[list[HistoryItem], bool]:
        """The history that fits the budget, and whether it still reaches back to the conversation's start."""
        host, window = self.host, self.host.settings.llm.history_messages
        budget = history_budget(host.settings, getattr(host.llm, "history_tokens", None))
        sizes = await host.llm.count_tokens([i.content for i in items]) if items and budget > 0 else None
        budgeted = fit_history(items, budget, first_index=total - len(items), step=window_step(window), sizes=sizes)
        return budgeted, total <= window and len(budgeted) == len(items)

    async def _prefill_next(self, prompt: _Prompt) -> None:
        """Have the model read the next turn's prompt up to its new message now, while nobody waits.

        The model's cache holds this turn's prompt, whose newest message carried recalled memories and lore, and the
        reply as it was written; the next prompt shows that message plain and the reply as it was heard. Without
        this, the next reply would read the last exchange again before the new message (80-90 tokens, 0.3-0.4 s
        on two cores) on every turn after memories were recalled. Background work: a reply that comes first stops it.

        When memories were recalled, the next message's start is read too, with the same memories: once the history
        no longer reaches back to the conversation's start they are about 50 tokens, often the same from turn to
        turn (bench/bench_turns.py), which the next reply then need not read.
        """
        prefill = getattr(self.host.llm, "prefill", None)
        if prefill is None:
            return
        try:
            items, total = await self._history()
            items, start = await self._fit(items, total)
            lore = await self._lore(items, NewMessage("", prompt.name))
            # The memories recalled for this message mostly come back with the next one: read them too, up to where
            # the person's words will stand. If other memories come, the reply reads from the first change.
            ahead = bool(prompt.memory_block)
            new_message = NewMessage(NEXT_WORDS if ahead else "", prompt.name)
            messages = self._build(items, new_message, start, memories=prompt.memory_block, lore=lore)
            new = max(i for i, m in enumerate(messages) if m["role"] == "user")
            if ahead:  # the new message's start is read too, up to the marker
                await prefill(messages[: new + 1], prompt.options.cache_key, read_to=NEXT_WORDS)
            else:
                await prefill(messages[:new], prompt.options.cache_key)
        except Exception as exc:  # noqa: BLE001 - an optimisation, never a failure of the reply
            log.debug("prefill of the next turn skipped: %s", exc)

    def _quote_answers(self) -> bool:
        mode = self.host.settings.memory.quote_answers
        return mode == "on" or (mode == "auto" and bool(getattr(self.host.llm, "small_model", False)))

    async def _lore(self, items: list[HistoryItem], new: NewMessage) -> ActivatedLore | None:
        """The lorebook entries the text activates, where the card's regexes need it done off the loop (else None:
        ``build_messages`` activates plain keywords itself)."""
        book = self.host.character.book
        if book is None or not book.uses_regex:
            return None
        # Card regexes are time-limited, but still run off the loop: other replies keep flowing.
        return await asyncio.to_thread(book.activate, lore_scan(items, new))

    def _build(
        self, items: list[HistoryItem], new: NewMessage, start: bool, *, memories: str = "", lore: ActivatedLore | None = None
    ) -> list[Message]:
        return build_messages(
            self.host.character, items, new, conversation_start=start, seed=self.conversation_id, memories=memories,
            chat_mode=self.traits.audience_chat, lore=lore, language=prompt_language(self.host.settings.persona.language),
            others=self.others,
        )

    def _messages(self, prompt: _Prompt, start: bool) -> list[Message]:
        messages = self._build(
            prompt.items, NewMessage(self.text, prompt.name, self.images), start, memories=prompt.memory_block, lore=prompt.lore
        )
        if prompt.opening:  # an assistant message last: the model continues it (llama.cpp's assistant prefill)
            messages.append({"role": "assistant", "content": prompt.opening})
        return messages

    async def _generate(self, prompt: _Prompt) -> TurnResult:
        """The model's answer, one Turn per tool round; sentences go to the voices as they are written."""
        host = self.host
        results: list[TurnResult] = []
        messages, options, round_ = prompt.messages, prompt.options, 0
        while True:
            turn = Turn(
                host.llm, messages, bus=host.bus, conversation_id=self.conversation_id, speaker_id=self.speaker_id,
                options=options,
                chunker=prompt.chunker,  # shared across tool rounds: sentence numbers keep counting
                on_token=self.on_token, on_sentence=self._on_sentence,
                started_at=self.started if round_ == 0 else None,
                moderate=host.moderator.check_output if host.moderator is not None else None,
                hygiene=prompt.hygiene, turn_id=self.id, lifecycle=False,
                opening=prompt.opening if round_ == 0 else "",
            )
            turn.mark("prompt_ready")
            self.turn = turn
            if self.first_turn is None:
                self.first_turn = turn
            if self.interrupted:
                turn.interrupt()
            part = await turn.run()
            if part.overflow and round_ == 0 and not part.reply and prompt.items:
                # The conversation outgrew the model's context: leave the older half out and ask again.
                prompt.items = prompt.items[len(prompt.items) // 2 + 1 :] if len(prompt.items) > 1 else []
                host.context_overflowed(part.error or "the prompt is longer than the model's context")
                messages = self._messages(prompt, False)
                self.first_turn = None
                continue
            results.append(part)
            if not part.tool_calls or part.interrupted or part.error or host.tools is None or self.interrupted:
                break
            if round_ == MAX_TOOL_ROUNDS:
                log.warning("reply %s: still calling tools after %d rounds; stopping there", self.id, round_)
                break
            messages = messages + await host.run_tools(part, prompt.ctx)
            options = replace(options, response_format=None)
            round_ += 1
        result = _merge(results)
        if self.interrupted:
            result.interrupted = True
        self.result = result
        self._written.set()
        host.bus.publish(
            TurnEnded(self.id, self.conversation_id, result.reply, result.interrupted, result.error, dict(result.timings_ms))
        )
        return result

    async def _hear_out(self, result: TurnResult) -> str | None:
        """Wait for the speech to end; what the listener heard where the reply is only heard, else None."""
        if self._voices and self.traits.heard:
            heard = await self.speech.wait() if self.speech is not None else None
            if heard is None and result.interrupted:
                heard = self.speech.heard() if self.speech is not None else ""
            return heard
        if self.speech is not None:
            await self.speech.wait()  # posted as text too: history keeps what was written
        return None

    async def _remember(self, prompt: _Prompt, result: TurnResult, heard: str | None) -> bool:
        """History keeps what was heard (or written); memory gets the exchange; a cut reply is kept as a fragment.
        True if her reply was stored."""
        host = self.host
        stored = result.reply
        if heard is not None:
            stored = heard.strip()
            result.interrupted = True
            result.spoken = stored
        if result.error:
            result.interrupted = True  # a reply cut by a failure is kept as a fragment, never as a complete answer
        if result.interrupted:
            stored = drop_partial_tag(stored)
        learn = not self.answering  # what another character said is not what the person told her
        if host.memory is not None and prompt.person is not None and prompt.forget is None and not result.error and stored and learn:
            host.memory.remember(Exchange(prompt.person, self.conversation_id, prompt.name, self.text, stored))
        if stored:
            await host.history.add(
                self.conversation_id, "assistant", stored, speaker_id="companion", speaker_name=host.character.name,
                platform=self.platform, interrupted=result.interrupted,
            )
        if result.error:
            log.error("reply %s in %s failed: %s", result.turn_id, self.conversation_id, result.error)
        return bool(stored)

    def _sentence(self, sentence: Sentence) -> None:
        if self.speech is None and not self.interrupted:
            voices = self._voices or []
            if voices:
                # Where the reply is only heard, stopping the speech stops the reply; where it is also
                # posted as text (Discord), it stops the audio only: the text was delivered whole.
                self.speech = Speech(voices, on_interrupt=self._stop if self.traits.heard else None, tts=self.tts)
        if self.speech is not None and not self.interrupted:
            self.speech.say(sentence)

    async def _on_sentence(self, sentence: Sentence) -> None:
        self._sentence(sentence)
        if self.on_sentence is not None:
            out = self.on_sentence(sentence)
            if out is not None:
                await out


def as_prompted(content: str, interrupted: bool) -> str:
    """A history message as the model reads it: a reply that was cut off ends with "…", so it is not taken as complete."""
    return content.rstrip() + "…" if interrupted and content.strip() else content


def history_budget(settings: Settings, model_hint: int | None) -> int:
    """Tokens of history in the prompt: the user's [llm] history_tokens when set, else what the model reads here
    within a few seconds (llm/sampling.py: long on a GPU, shorter for a big model on a slow CPU), else the default."""
    if "history_tokens" in settings.llm.model_fields_set or not isinstance(model_hint, int):
        return settings.llm.history_tokens
    return model_hint


def reply_budget(settings: Settings, platform: str, small: bool = False) -> int:
    """Tokens a reply may take where it is heard (short) or read (longer).

    A small model's written replies get at most SMALL_MODEL_WRITTEN_TOKENS: past a few sentences it rambles
    (on the embedded model a 150-token budget gave a median of 370 characters over eight turns, most replies
    running to the limit), and a chat message should read like one. At 90 tokens one eight-turn conversation in
    six still had a median over 350 characters (up to 360); at 80, eight conversations had medians of 241-329.
    """
    llm = settings.llm
    if platform_traits(platform).heard:
        return llm.spoken_max_tokens
    return min(llm.max_tokens, SMALL_MODEL_WRITTEN_TOKENS) if small else llm.max_tokens


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
        written=" ".join(p.written for p in parts if p.written),
    )
