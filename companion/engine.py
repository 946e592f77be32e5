"""The conversation engine: history + persona + LLM -> one Turn per message.

Adapters (CLI, web, later Discord, voice, games) all call ``respond``; it is
the one place where a message becomes a prompt, a reply and history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from .audio_level import AudioLevel
from .bus import EventBus
from .config import Settings
from .events import ToolCalled, UserMessage
from .history import HistoryStore
from .hygiene import ReplyHygiene, stop_strings
from .llm.base import LLM, GenerationOptions, Message, Priority
from .llm.scheduler import LLMScheduler
from .memory.manager import Exchange
from .moderation import Moderator
from .persona import Character
from .prompt import HistoryItem, NewMessage, build_messages, fit_history, history_window, lore_scan, window_step
from .supervisor import HealthBoard
from .text import ReplyChunker, drop_partial_tag
from .tools.registry import ToolContext, ToolRegistry
from .turn import SentenceSink, TokenSink, Turn, TurnResult

if TYPE_CHECKING:
    from .memory.manager import MemoryManager

log = logging.getLogger(__name__)

__all__ = ["Companion"]


class Companion:
    """Answers messages in character, one turn at a time per conversation."""

    def __init__(
        self,
        settings: Settings,
        *,
        llm: LLM,
        character: Character,
        history: HistoryStore,
        bus: EventBus | None = None,
        memory: "MemoryManager | None" = None,
    ) -> None:
        self.settings = settings
        self.audio_level = AudioLevel()
        self.tools: ToolRegistry | None = None  # set when plugins or MCP servers provide tools
        self._warned_tools = False
        self._warned_overflow = False
        self.moderator: Moderator | None = None
        if settings.stream.blocked_terms:
            self.moderator = Moderator(
                settings.stream.blocked_terms, blocked_users=settings.stream.blocked_users, replacement=settings.stream.replacement
            )  # loudness of the reply being played (voice), for the avatar's mouth
        # Every model call goes through one scheduler (replies first, memory work last).
        self.llm: LLMScheduler = llm if isinstance(llm, LLMScheduler) else LLMScheduler(llm)
        self.character = character
        self.history = history
        self.bus = bus or EventBus()
        self.memory = memory
        self._locks: dict[str, asyncio.Lock] = {}
        self._active: dict[str, Turn] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.health = HealthBoard().attach(self.bus)  # every adapter's state, for /health and `companion status`

    async def start(self) -> None:
        await self.history.open()
        await self.llm.start()
        # A local model prefills the (long, fixed) system prompt now, not during the first reply.
        try:
            system = build_messages(
                self.character, [], NewMessage("", self.settings.companion.user_name), conversation_start=False
            )[:1]
            await self.llm.warm(system)
        except Exception as exc:  # noqa: BLE001 - a warm-up is an optimisation, never a reason to stop
            log.debug("llm warm-up skipped: %s", exc)
        if self.memory is not None:
            try:
                await self.memory.start()
            except Exception as exc:  # memory is valuable, not vital: keep talking without it
                log.warning("long-term memory is off: %s", exc)
                self.memory = None

    async def close(self, memory_grace: float = 0.5) -> None:
        """Stop replies in flight, give queued memory extraction ``memory_grace`` seconds, flush history."""
        for turn in list(self._active.values()):
            turn.interrupt()
        for lock in list(self._locks.values()):
            if lock.locked():
                try:
                    async with asyncio.timeout(1.0):
                        async with lock:
                            pass
                except TimeoutError:
                    log.warning("a reply did not stop within 1 s at shutdown")
        if self.memory is not None:
            if memory_grace > 0:
                try:
                    await self.memory.drain(memory_grace)
                except TimeoutError:
                    log.debug("memory: extraction still queued at shutdown (saved for the next start)")
            await self.memory.close()
        await self.llm.close()
        await self.history.close()

    async def switch_llm(self, settings: Settings) -> str:
        """Think with the model ``settings.llm`` names from now on (the settings panel); returns its name.

        The new provider is started and checked before it takes over; replies
        already running finish on the old one, which is closed afterwards.
        """
        from .llm import create_provider

        new = create_provider(settings, settings.llm.provider)
        await new.start()
        try:
            await new.check()
        except Exception:
            await new.close()
            raise
        old, self.llm.inner = self.llm.inner, new
        self.settings.llm = settings.llm

        async def close_old() -> None:
            while self.llm._running:  # noqa: SLF001 - in-flight replies keep the old provider until they end
                await asyncio.sleep(0.2)
            await old.close()

        task = asyncio.create_task(close_old())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return new.name

    def greeting(self, speaker_name: str | None = None, conversation_id: str = "") -> str:
        return self.character.greeting(speaker_name or self.settings.companion.user_name, seed=conversation_id)

    def is_speaking(self) -> bool:
        """True while a reply is being written or its audio is still being heard (any voice output)."""
        if any(not turn.done for turn in self._active.values()):
            return True
        return time.perf_counter() - self.audio_level.last_sound() < 0.3

    def permission_level(self, speaker_id: str, platform: str) -> str:
        """anyone < known < owner, from [tools] owners / known_users (the local user is the owner by default)."""
        cfg = self.settings.tools
        if speaker_id in cfg.owners:
            return "owner"
        if speaker_id in cfg.known_users:
            return "known"
        return "anyone"

    def _llm_tools_ok(self) -> bool:
        ok = getattr(self.llm, "supports_tools", True)
        if not ok and not self._warned_tools and self.tools is not None and len(self.tools):
            self._warned_tools = True
            log.warning(
                "tools are off for %s: its chat template has no tool-call format; use an OpenAI-compatible "
                "server (Ollama, vLLM) or a local model whose template supports tools", self.llm.name
            )
        return bool(ok)

    async def _run_tools(self, part: TurnResult, ctx: ToolContext) -> list[Message]:
        """Run the calls the model asked for; the messages that tell it the results."""
        assert self.tools is not None
        calls = [
            {"id": c.id or f"call_{i}", "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}}
            for i, c in enumerate(part.tool_calls)
        ]
        out: list[Message] = [{"role": "assistant", "content": part.reply or None, "tool_calls": calls}]
        images: list[str] = []
        for call, spec in zip(part.tool_calls, calls):
            result = await self.tools.call(call.name, call.arguments, ctx)
            self.bus.publish(ToolCalled(ctx.conversation_id, call.name, ctx.speaker_id, not result.is_error))
            log.info("tool %s for %s: %s", call.name, ctx.speaker_id, "ok" if not result.is_error else result.text[:120])
            out.append({"role": "tool", "tool_call_id": spec["id"], "content": result.text})
            images += result.images
        if images:
            parts = [{"type": "text", "text": "(the image from the tool)"}, *({"type": "image_url", "image_url": {"url": u}} for u in images)]
            out.append({"role": "user", "content": parts})
        return out

    async def forget_speaker(self, speaker_id: str, platform: str = "") -> tuple[int, int]:
        """"Forget everything about me" outside a conversation (Discord /forget, the web API): memories, queued
        extraction and the chat log, as the spoken request does. Returns (memories, messages) removed."""
        removed = 0
        if self.memory is not None:
            person = await self.memory.store.person_for(speaker_id, platform=platform)
            removed = await self.memory.forget_person(person)
        said = await self.history.forget_speaker(speaker_id)
        return removed, said

    def interrupt(self, conversation_id: str) -> bool:
        """Stop the reply being written in ``conversation_id``; False if there was none."""
        turn = self._active.get(conversation_id)
        if turn is None or turn.done:
            return False
        turn.interrupt()
        return True

    async def respond(
        self,
        text: str,
        *,
        conversation_id: str = "default",
        speaker_id: str = "local",
        speaker_name: str | None = None,
        platform: str = "cli",
        images: Sequence[str] = (),
        on_token: TokenSink | None = None,
        on_sentence: SentenceSink | None = None,
        on_start: Callable[[Turn], Awaitable[None] | None] | None = None,
        spoken: Callable[[TurnResult], Awaitable[str | None]] | None = None,
        first_words: int = 0,
        priority: Priority = Priority.REPLY,
    ) -> TurnResult:
        """Answer ``text`` from ``speaker_id``; the message and the reply are stored in history.

        Messages of one conversation are answered in order; different
        conversations (two Discord channels, say) proceed concurrently.

        ``spoken`` (voice) is awaited once the text is complete and returns
        what the listener actually heard: None when they heard it all, else the
        prefix they heard before interrupting. Only that goes into history and
        memory, so the character never "remembers" saying what nobody heard.

        ``priority``: COMMENTARY for what nobody asked for (game commentary,
        speaking up), which more urgent model work preempts.
        """
        started = time.perf_counter()
        name = speaker_name or (speaker_id if speaker_id != "local" else self.settings.owner_display_name())
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            self.bus.publish(UserMessage(conversation_id, speaker_id, text, platform))
            window = self.settings.llm.history_messages
            total = await self.history.count(conversation_id)
            recent = await self.history.recent(conversation_id, history_window(total, window))
            conversation_start = total <= window
            items = [
                HistoryItem(m.role, as_prompted(m.content, m.interrupted and m.role == "assistant"), m.speaker_name)
                for m in recent
                if m.role in ("user", "assistant") and (m.content.strip() or not m.interrupted)
            ]
            budgeted = fit_history(
                items, self.settings.llm.history_tokens, first_index=total - len(items), step=window_step(window)
            )
            conversation_start = conversation_start and len(budgeted) == len(items)
            items = budgeted
            person, forget, memory_block = None, None, ""
            if self.memory is not None:
                self.memory.turn_started()
                try:
                    person, forget, memory_block = await self.memory.prepare(
                        speaker_id,
                        text,
                        conversation_id=conversation_id,
                        platform=platform,
                        speaker_name=name,
                        earlier=len(items) < total,  # older messages are out of the prompt
                    )
                except Exception:
                    log.exception("memory recall failed; answering without it")
                if forget == "all":
                    await self.history.forget_speaker(speaker_id)  # memories went in prepare(); the log goes too
                    items = [i for i in items if i.role != "user" or i.speaker_name != name]

            book = self.character.book
            lore = None
            if book is not None and book.uses_regex:
                # Card regexes are time-limited, but still run off the loop: other replies keep flowing.
                lore = await asyncio.to_thread(book.activate, lore_scan(items, NewMessage(text, name)))

            def prompt(items: list[HistoryItem], start: bool) -> list[Message]:
                return build_messages(
                    self.character,
                    items,
                    NewMessage(text, name, tuple(images)),
                    conversation_start=start,
                    seed=conversation_id,
                    memories=memory_block,
                    chat_mode=platform in CHAT_PLATFORMS,
                    lore=lore,
                )

            messages = prompt(items, conversation_start)
            # Stored before the LLM runs: a message is never lost to a failing provider.
            # (Except the request to be forgotten itself.)
            if forget != "all":
                await self.history.add(
                    conversation_id, "user", text, speaker_id=speaker_id, speaker_name=name, platform=platform
                )
            if self.memory is not None and person is not None and forget is None and priority == Priority.REPLY:
                self.memory.heard(person, conversation_id, text)  # their own words, remembered with any model
            ctx = ToolContext(speaker_id, platform, conversation_id, self.permission_level(speaker_id, platform))
            offered = self.tools.specs_for(ctx) if self.tools is not None and self._llm_tools_ok() else []
            chunker = ReplyChunker(self.settings.text.first_clause_chars, self.settings.text.max_sentence_chars, first_words)
            names = (name, self.settings.companion.user_name)
            options = GenerationOptions(
                max_tokens=reply_budget(self.settings, platform),
                temperature=self.settings.llm.temperature,
                tools=tuple(offered),
                priority=priority,
                stop=tuple(stop_strings(names, self.character.name)),
            )
            hygiene = ReplyHygiene(names, self.character.name)
            results: list[TurnResult] = []
            round_ = 0
            try:
                while True:
                    turn = Turn(
                        self.llm,
                        messages,
                        bus=self.bus,
                        conversation_id=conversation_id,
                        speaker_id=speaker_id,
                        options=options,
                        chunker=chunker,  # shared across tool rounds: sentence numbers keep counting
                        on_token=on_token,
                        on_sentence=on_sentence,
                        started_at=started if round_ == 0 else None,
                        moderate=self.moderator.check_output if self.moderator is not None else None,
                        hygiene=hygiene,
                    )
                    turn.mark("prompt_ready")
                    self._active[conversation_id] = turn
                    if on_start is not None and round_ == 0:
                        started_cb = on_start(turn)
                        if started_cb is not None:
                            await started_cb
                    part = await turn.run()
                    if part.overflow and round_ == 0 and not part.reply and items:
                        # The conversation outgrew the model's context: leave the older half out and ask again
                        # (a new first round: on_start sees the turn that now answers).
                        items = items[len(items) // 2 + 1 :] if len(items) > 1 else []
                        if not self._warned_overflow:
                            self._warned_overflow = True
                            log.warning("%s; older messages are left out of the prompt", part.error)
                        messages = prompt(items, False)
                        continue
                    results.append(part)
                    if not part.tool_calls or part.interrupted or part.error or self.tools is None:
                        break
                    if round_ == MAX_TOOL_ROUNDS:
                        log.warning("turn %s: still calling tools after %d rounds; stopping there", part.turn_id, round_)
                        break
                    messages = messages + await self._run_tools(part, ctx)
                    options = replace(options, response_format=None)
                    round_ += 1
                result = _merge(results)
                heard = await spoken(result) if spoken is not None else None
            finally:
                self._active.pop(conversation_id, None)
                if self.memory is not None:
                    self.memory.turn_ended()
            stored = result.reply
            if heard is not None:
                stored = heard.strip()
                result.interrupted = True
                result.spoken = stored
            if result.error:
                result.interrupted = True  # a reply cut by a failure is kept as a fragment, never as a complete answer
            if result.interrupted:
                stored = drop_partial_tag(stored)
            if self.memory is not None and person is not None and forget is None and not result.error and stored:
                self.memory.remember(Exchange(person, conversation_id, name, text, stored))
            if stored:
                await self.history.add(
                    conversation_id,
                    "assistant",
                    stored,
                    speaker_id="companion",
                    speaker_name=self.character.name,
                    platform=platform,
                    interrupted=result.interrupted,
                )
            if result.error:
                log.error("turn %s in %s failed: %s", result.turn_id, conversation_id, result.error)
            return result


MAX_TOOL_ROUNDS = 4
CHAT_PLATFORMS = ("twitch", "youtube")  # audience chat: quoted, attributed, never instructions
# Replies on these are heard, not read: a minute of speech nobody asked for is worse than a short answer.
SPOKEN_PLATFORMS = ("voice", "stream", "twitch", "youtube", "game", "minecraft")


def as_prompted(content: str, interrupted: bool) -> str:
    """A history message as the model reads it: a reply that was cut off ends with "…", so it is not taken as complete."""
    return content.rstrip() + "…" if interrupted and content.strip() else content


def reply_budget(settings: Settings, platform: str) -> int:
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
