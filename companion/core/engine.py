"""The conversation engine: history + persona + LLM -> one Turn per message.

Adapters (CLI, web, later Discord, voice, games) all call ``respond``; it is
the one place where a message becomes a prompt, a reply and history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from companion.character.persona import Character
from companion.config import Settings
from companion.core.audio_level import AudioLevel
from companion.core.floor import Floor
from companion.core.history import HistoryStore
from companion.core.moderation import Moderator
from companion.core.prompt import NewMessage, build_messages, prompt_language
from companion.core.reply import Reply
from companion.core.speech import VoiceRouter, speak_text
from companion.core.turn import TurnResult
from companion.llm.base import LLM, Message
from companion.llm.scheduler import LLMScheduler
from companion.runtime.bus import EventBus
from companion.runtime.events import Announcement, ToolCalled
from companion.runtime.supervisor import HealthBoard
from companion.runtime.tasks import spawn
from companion.runtime.threads import one_blas_thread
from companion.tools.registry import ToolContext, ToolRegistry

if TYPE_CHECKING:
    from companion.memory.manager import MemoryManager

log = logging.getLogger(__name__)

__all__ = ["Companion", "Reply"]


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
        moderator: Moderator | None = None,
        owns_shared: bool = True,
    ) -> None:
        self.settings = settings
        # False for a group's other characters: the LLM and the history are the host's, opened and closed by it
        self.owns_shared = owns_shared
        self.audio_level = AudioLevel()
        self.tools: ToolRegistry | None = None  # set when plugins or MCP servers provide tools
        self._warned_tools = False
        self._warned_overflow = False
        self.moderator = moderator  # checks every sentence before anyone hears or reads it (set by the app from config)
        # Every model call goes through one scheduler (replies first, memory work last).
        self.llm: LLMScheduler = llm if isinstance(llm, LLMScheduler) else LLMScheduler(llm)
        self.character = character
        self.history = history
        self.bus = bus or EventBus()
        self.memory = memory
        self.floor: Floor[Reply] = Floor()  # one reply at a time per conversation, and which one holds it
        self._replies: set[Reply] = set()  # every reply not finished (some wait for their conversation's turn)
        self.closing = False  # shutting down: replies in flight are stopped and new ones end at once
        self.voices = VoiceRouter()  # every voice the companion speaks with now, and which replies each speaks
        self._changed = asyncio.Event()  # set when a reply or an announcement ends: until_quiet() wakes on it
        self.bus.subscribe(Announcement, self._speak_announcement)
        self._background: set[asyncio.Task[None]] = set()
        self.health = HealthBoard().attach(self.bus)  # every adapter's state, for /health and `companion status`

    async def start(self) -> None:
        one_blas_thread()  # recall's NumPy must not spin on the cores the model reads the new message with
        if self.owns_shared:
            await self.history.open()
            await self.llm.start()
        # A local model prefills the stable start of the prompt (system prompt, the card's example turns) now,
        # not during the first reply; with saved states it loads it from disk instead.
        try:
            messages = build_messages(
                self.character, [], NewMessage("", self.settings.owner_display_name()), conversation_start=False,
                language=prompt_language(self.settings.persona.language),  # as Reply writes it: the same prefix
            )
            new = max(i for i, m in enumerate(messages) if m["role"] == "user")  # the (empty) new message
            await self.llm.warm(messages[:new])
        except Exception as exc:  # noqa: BLE001 - a warm-up is an optimisation, never a reason to stop
            log.debug("llm warm-up skipped: %s", exc)
        if self.memory is not None:
            try:
                await self.memory.start()
            except Exception as exc:  # memory is valuable, not vital: keep talking without it
                log.warning("long-term memory is off: %s", exc)
                self.memory = None

    async def close(self, memory_grace: float = 0.5, *, whole_queue: bool = True) -> None:
        """Stop replies in flight, give memory extraction ``memory_grace`` seconds, flush history.

        ``whole_queue``: wait for every queued job (a one-shot command that learns from its one exchange); else
        only for the job in progress (shutdown: the rest is journaled and done at the next start).
        """
        for handle in list(self._replies):
            handle.interrupt()
        for task in list(self._background):  # reading a next prompt ahead: nobody will ask now
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if not await self.floor.wait_idle(1.0):
            log.warning("a reply did not stop within 1 s at shutdown")
        if self.memory is not None:
            if memory_grace > 0 and not whole_queue:
                await self.memory.settle(memory_grace)
            elif memory_grace > 0:
                try:
                    await self.memory.drain(memory_grace)
                except TimeoutError:
                    log.debug("memory: extraction still queued at shutdown (saved for the next start)")
            await self.memory.close()
        if self.owns_shared:
            await self.llm.close()
            await self.history.close()

    def read_ahead(self, work: Coroutine[Any, Any, None]) -> None:
        """A reply's reading ahead of its conversation's next prompt (``Reply._prefill_next``): in the background,
        kept until it ends, stopped when the companion closes."""
        if self.closing:
            work.close()
            return
        task = spawn(work, "llm-read-ahead")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def switch_llm(self, settings: Settings) -> str:
        """Think with the model ``settings.llm`` names from now on (the settings panel); returns its name.

        The new provider is started and checked before it takes over; replies
        already running finish on the old one, which is closed afterwards.
        """
        from companion.llm import create_provider

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
            await self.llm.idle()  # in-flight replies keep the old provider until they end
            await old.close()

        spawn(close_old(), "close-old-llm")
        return new.name

    def greeting(self, speaker_name: str | None = None, conversation_id: str = "") -> str:
        return self.character.greeting(speaker_name or self.settings.companion.user_name, seed=conversation_id)

    def is_speaking(self) -> bool:
        """True while a reply is being written or its audio is still being heard (any voice output)."""
        if any(not handle.done for handle in self._replies) or self.voices.busy():
            return True
        return self.audio_level.clock() - self.audio_level.last_sound() < 0.3  # on the clock the level was recorded with

    async def until_quiet(self) -> None:
        """Return once she is neither writing nor speaking (stream chat waits here before its next answer).

        Woken when a reply or an announcement ends; while audio still plays out of a buffer it looks again at
        the end of the 0.3 s silence window, the only state without an event of its own.
        """
        while self.is_speaking():
            self._changed.clear()
            if any(not handle.done for handle in self._replies):
                timeout = None  # a reply in progress: its end sets the event
            else:
                timeout = max(0.05, 0.3 - (self.audio_level.clock() - self.audio_level.last_sound()))
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                pass

    def permission_level(self, speaker_id: str, platform: str) -> str:
        """anyone < known < owner, from [tools] owners / known_users (the local user is the owner by default)."""
        cfg = self.settings.tools
        if speaker_id in cfg.owners:
            return "owner"
        if speaker_id in cfg.known_users:
            return "known"
        return "anyone"

    def tool_specs(self, ctx: ToolContext) -> list[dict[str, Any]]:
        """The tools offered to the model for this caller (none when the model has no tool-call format)."""
        return self.tools.specs_for(ctx) if self.tools is not None and self._llm_tools_ok() else []

    def context_overflowed(self, error: str) -> None:
        if not self._warned_overflow:
            self._warned_overflow = True
            log.warning("%s; older messages are left out of the prompt", error)

    def _llm_tools_ok(self) -> bool:
        ok = getattr(self.llm, "supports_tools", True)
        if not ok and not self._warned_tools and self.tools is not None and len(self.tools):
            self._warned_tools = True
            log.warning(
                "tools are off for %s: its chat template has no tool-call format; use an OpenAI-compatible "
                "server (Ollama, vLLM) or a local model whose template supports tools", self.llm.name
            )
        return bool(ok)

    async def run_tools(self, part: TurnResult, ctx: ToolContext) -> list[Message]:
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
        """Stop the reply being written or spoken in ``conversation_id``; False if there was none."""
        handle = self.floor.holder(conversation_id)
        if handle is None or handle.done:
            return False
        handle.interrupt()
        return True

    def shut_down_replies(self) -> None:
        """Shutdown begins: stop every reply, those waiting for their conversation's turn too, and end the ones
        still arriving (a browser that keeps talking) at once, so nothing holds the floor when the deadline comes."""
        self.closing = True
        for handle in list(self._replies):
            handle.interrupt()

    def interrupt_all(self) -> list[str]:
        """Stop every reply being written or spoken (the stop button, shutdown); the conversations stopped."""
        return [c for c in self.floor.holders() if self.interrupt(c)]

    def reply(self, text: str, **options: Any) -> Reply:
        """Start answering ``text``; the handle stops it (``interrupt()``) or waits for it.

        ``options`` are :class:`Reply`'s (conversation_id, speaker_id, platform,
        on_token, on_sentence, priority, ...). Messages of one conversation are
        answered in order; different conversations proceed concurrently. The
        reply is spoken on the voices ``self.voices`` routes it to, and history
        keeps only what the listener heard.
        """
        handle = Reply(self, text, **options)
        self._replies.add(handle)
        if self.closing:
            handle.interrupt()

        def ended(task: "asyncio.Task[TurnResult]") -> None:
            self._replies.discard(handle)
            self._changed.set()
            if not task.cancelled() and task.exception() is not None:  # retrieved here: logged even if nobody waits
                log.error("reply %s failed: %s", handle.id, task.exception(), exc_info=task.exception())

        handle.task.add_done_callback(ended)
        return handle

    async def respond(self, text: str, **kwargs: Any) -> TurnResult:
        """``reply(...)`` and wait for it: the whole answer, after it was heard."""
        return await self.reply(text, **kwargs).wait()

    async def announce(self, text: str, *, conversation_id: str = "announcements", speaker_id: str = "") -> None:
        """Say ``text`` unprompted (a reminder, a timer): stored, then shown on every page and spoken on every voice."""
        await self.history.add(
            conversation_id, "assistant", text, speaker_id="companion", speaker_name=self.character.name, platform="announcement"
        )
        self.bus.publish(Announcement(conversation_id, text, speaker_id))

    def _speak_announcement(self, event: Announcement) -> None:
        """Every Announcement on the bus (this engine's, plugins' timers and reminders) is spoken on every voice,
        in order: each speech takes the voices' floor after the one before it."""
        voices = self.voices.route(event.conversation_id, "announcement")
        if voices:
            spawn(speak_text(voices, event.text), "speak-announcement").add_done_callback(lambda _: self._changed.set())
