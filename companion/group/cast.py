"""A group of characters on one stage: one ``Companion`` engine per character, one shared LLM and history.

Each character has its own card, reply budget, voice and long-term memory; all of them read one conversation
history in which every line carries who said it (the others' lines reach each character as someone else's
words, ``Reply(others=...)``). ``GroupPolicy`` picks who speaks; the cast makes them speak one after another,
never over each other: a stage lock per cast, and each line waits for the one before to be heard.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from companion.core.speech import Synthesizer
from companion.core.turn import TurnResult
from companion.group.policy import GroupPolicy

if TYPE_CHECKING:
    from companion.core.engine import Companion

log = logging.getLogger(__name__)

__all__ = ["Cast", "Line", "OwnVoice"]


class OwnVoice(Synthesizer, Protocol):
    """A character's own TTS engine (voice.tts.base.TTS): loaded at start, released at close."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Line:
    """One character's reply in a group turn."""

    character: str
    result: TurnResult

    @property
    def text(self) -> str:
        return self.result.spoken if self.result.interrupted and self.result.spoken is not None else self.result.reply


class Cast:
    """Answers a person's message with one or more characters, then lets them talk among themselves a little."""

    def __init__(
        self, companions: Sequence[Companion], policy: GroupPolicy, *, quiet: Callable[[], bool] = lambda: False,
        voices: dict[str, OwnVoice] | None = None,
    ) -> None:
        self.companions = {c.character.display_name: c for c in companions}
        missing = [m.name for m in policy.members if m.name not in self.companions]
        if missing:
            raise ValueError(f"no engine for {', '.join(missing)} in the group")
        self.policy = policy
        self.host = self.companions[policy.host.name]
        self.voices = voices or {}  # character -> her own TTS ([[characters]] voice), spoken on the host's outputs
        self.quiet = quiet  # the stream's quiet mode: only the answer to the person, no banter
        self._stage = asyncio.Lock()  # one stage: two characters never talk over each other
        self._last: dict[str, str] = {}  # conversation -> the character who spoke last
        self._current: Any = None  # the reply on stage now (interrupt() stops it and what is queued)
        self._cancelled = False
        self._conversation: str | None = None  # of the group turn on stage
        self._on_start: Callable[[str, Any], Any] | None = None  # the group turn on stage: told as each reply starts

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.policy.members]

    def commentator(self) -> str:
        """Who comments on what the host does in a game: the most talkative of the others."""
        others = [m for m in self.policy.members if m.name != self.policy.host.name]
        return max(others, key=lambda m: m.talkativeness).name if others else self.policy.host.name

    async def start(self) -> None:
        for tts in self.voices.values():
            await tts.start()
        await self.host.start()  # opens the shared LLM and history first
        for companion in self.companions.values():
            if companion is not self.host:
                await companion.start()

    async def close(self, memory_grace: float = 0.5, *, whole_queue: bool = True) -> None:
        self.interrupt()
        for companion in self.companions.values():
            if companion is not self.host:
                # at shutdown the host's grace is the one to spend: a co-host's queued memory work is journaled
                await companion.close(memory_grace if whole_queue else 0.0, whole_queue=whole_queue)
        await self.host.close(memory_grace, whole_queue=whole_queue)  # the shared LLM and history last
        for tts in self.voices.values():
            await tts.close()

    def interrupt(self, conversation_id: str | None = None) -> bool:
        """Barge-in: stop whoever speaks and drop the lines still to come in this group turn (only if it is in
        ``conversation_id``, when given: a page's stop button does not stop a Discord channel's turn)."""
        if conversation_id is not None and conversation_id != self._conversation:
            return False
        self._cancelled = True
        current = self._current
        if current is not None and not current.done:
            current.interrupt()
            return True
        return False

    async def respond(
        self,
        text: str,
        *,
        conversation_id: str = "default",
        speaker_id: str = "local",
        speaker_name: str | None = None,
        platform: str = "cli",
        on_line: Callable[[Line], Any] | None = None,
        on_start: Callable[[str, Any], Any] | None = None,
        first: str = "",
        **options: Any,
    ) -> list[Line]:
        """Every character's line for this message, in the order spoken (each heard before the next starts).

        ``first``: who answers (a game event: the co-host comments while the host plays); else the policy picks.
        """
        async with self._stage:
            self._cancelled = False
            self._conversation = conversation_id
            self._on_start = on_start
            lines: list[Line] = []
            order = [first] if first else self.policy.answer_person(text, last_speaker=self._last.get(conversation_id, ""))
            for i, name in enumerate(order):
                if i == 0:
                    line = await self._say(name, text, conversation_id, speaker_id, speaker_name, platform, "", options)
                elif lines:
                    line = await self._answer(name, lines[-1], conversation_id, speaker_id, platform, options)
                else:  # the first had nothing to add: the person's message (stored already) is answered as it is
                    line = await self._say(name, text, conversation_id, speaker_id, speaker_name, platform, speaker_name or "someone", options)
                if line is None:
                    if self._cancelled:
                        return lines
                    continue  # nothing to add: the next one named still answers
                lines.append(line)
                await _call(on_line, line)
            if not lines and not self._cancelled:  # a person is never left with silence: someone else answers
                spare = next((m.name for m in self.policy.members if m.name not in order), None)
                if spare is not None:
                    line = await self._say(spare, text, conversation_id, speaker_id, speaker_name, platform, speaker_name or "someone", options)
                    if line is not None:
                        lines.append(line)
                        await _call(on_line, line)
            exchanges = 0
            while lines and not self._cancelled:
                nxt = self.policy.answer_character(lines[-1].character, lines[-1].text, exchanges=exchanges, quiet=self.quiet())
                if nxt is None:
                    break
                line = await self._answer(nxt, lines[-1], conversation_id, speaker_id, platform, options)
                if line is None:
                    break
                lines.append(line)
                exchanges += 1
                await _call(on_line, line)
            return lines

    async def _answer(self, name: str, before: Line, conversation_id: str, speaker_id: str, platform: str, options: dict[str, Any]) -> Line | None:
        """``name`` answers the line ``before`` (already in the history)."""
        if not before.text.strip():
            return None  # nothing was heard of it: nothing to answer
        return await self._say(name, before.text, conversation_id, speaker_id, before.character, platform, before.character, options)

    async def _say(
        self, name: str, text: str, conversation_id: str, speaker_id: str, speaker_name: str | None, platform: str,
        answering: str, options: dict[str, Any],
    ) -> Line | None:
        if self._cancelled:
            return None
        companion = self.companions[name]
        others = [n for n in self.names if n != name]
        if companion is not self.host:  # one stage: every character is heard where the host is, in her own voice
            options = {**options, "voices": self.host.voices.route(conversation_id, platform)}
        handle = companion.reply(
            text, conversation_id=conversation_id, speaker_id=speaker_id, speaker_name=speaker_name, platform=platform,
            others=others, answering=answering, tts=self.voices.get(name), **options,
        )
        self._current = handle
        await _call(self._on_start, name, handle)
        try:
            result = await handle.wait()
        finally:
            self._current = None
        if result.interrupted:
            self._cancelled = True  # stopped while speaking: the queued lines go too
        if not result.reply.strip() and not result.error and not result.interrupted:
            # all of it left out (a repeat, a line of someone else's): in a group she simply has nothing to add
            log.info("group: %s had nothing to add", name)
            return None
        self._last[conversation_id] = name
        return Line(name, result)


async def _call(callback: Callable[..., Any] | None, *args: Any) -> None:
    """A callback that may be a coroutine function (a web page's socket) or a plain one (the terminal)."""
    if callback is not None:
        out = callback(*args)
        if inspect.isawaitable(out):
            await out
