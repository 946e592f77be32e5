"""Stream chat in the conversation: every platform's messages go through one path.

input moderation -> prioritiser -> the engine (prompt with chat quoted) ->
per-sentence output moderation -> speech / overlay / chat reply. While the
companion speaks, candidates wait (the prioritiser holds them); when chat is
quiet for long enough it speaks up by itself, within a rate limit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from companion.core.moderation import Moderator
from companion.llm.base import Priority
from companion.runtime.events import ChatAnswering  # re-exported here for the adapters that import it from stream.chat
from companion.stream.message import ChatMessage
from companion.stream.prioritiser import Candidate, ChatPrioritiser, Weights

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.core.engine import Companion
    from companion.core.turn import TurnResult

log = logging.getLogger(__name__)

ANSWERS_KEPT = 200

__all__ = ["StreamChat", "ChatAnswering", "SpeakUpPolicy"]

Poster = Callable[[str, str], Awaitable[None]]  # (platform, text)


class SpeakUpPolicy:
    """When the companion may start talking by itself: pure logic on a clock."""

    def __init__(self, after: float, per_hour: int, quiet: bool = False, clock=time.monotonic) -> None:
        self.after = after
        self.per_hour = per_hour
        self.quiet = quiet
        self.clock = clock
        self.last_activity = clock()
        self._spoken: deque[float] = deque()

    def activity(self) -> None:
        self.last_activity = self.clock()

    def due(self) -> bool:
        now = self.clock()
        while self._spoken and now - self._spoken[0] > 3600:
            self._spoken.popleft()
        if self.quiet or self.after <= 0 or len(self._spoken) >= self.per_hour:
            return False
        return now - self.last_activity >= self.after

    def spoke(self) -> None:
        now = self.clock()
        self._spoken.append(now)
        self.last_activity = now


class StreamChat:
    def __init__(
        self, companion: "Companion", settings: "Settings", *, posters: dict[str, Poster] | None = None, cast: Any = None,
    ) -> None:
        cfg = settings.stream
        self.companion = companion
        # [[characters]] (companion.group.Cast): chat is answered by the group; a viewer may name one of them
        self.cast = cast
        self.on_line: Callable[[Any], Any] | None = None  # told of each character's line (`companion chat --platform`)
        self.settings = settings
        self.moderator = companion.moderator or Moderator(cfg.blocked_terms, blocked_users=cfg.blocked_users, replacement=cfg.replacement)
        known = {k: v for k, v in cfg.weights.items() if k in Weights.__dataclass_fields__}
        self.prioritiser = ChatPrioritiser(weights=Weights(**known), max_age=cfg.max_age)
        self.speak_up = SpeakUpPolicy(cfg.speak_up_after, cfg.speak_up_per_hour, cfg.quiet)
        self.posters = posters or {}
        self._wake = asyncio.Event()
        self.bot_names = {companion.character.name.lower(), (companion.character.nickname or "").lower()} - {""}
        # the latest answers (tests, logs); a stream brings thousands of viewers a day: bounded
        self.answers: deque[tuple[Candidate, "TurnResult"]] = deque(maxlen=ANSWERS_KEPT)

    def mentions_bot(self, text: str) -> bool:
        low = text.lower()
        return any(f"@{n}" in low or n in low.split() for n in self.bot_names)

    def ingest(self, message: ChatMessage) -> str:
        """Take one chat message or event; returns what happened to it (queued, or why not)."""
        verdict = self.moderator.check_input(message)
        if not verdict.allowed:
            return f"blocked: {verdict.reason}"
        if verdict.text != message.text or (not message.mentions_bot and self.mentions_bot(verdict.text)):
            message = ChatMessage(
                message.platform, message.user_id, message.user_name, verdict.text, message.kind, message.amount,
                message.mentions_bot or self.mentions_bot(verdict.text), message.at, message.id,
            )
        self.speak_up.activity()
        result = self.prioritiser.add(message)
        self._wake.set()
        return result

    async def answer(self, candidate: Candidate) -> "TurnResult":
        """Answer one candidate through the engine (chat quoted in the prompt) and post/speak it."""
        msg = candidate.message
        platform = msg.platform if msg else "twitch"
        if msg is None:
            text, speaker, name = candidate.text, f"{platform}:chat", "Chat"
        else:
            text, speaker, name = _event_text(msg), msg.speaker_id, msg.user_name
        self.companion.bus.publish(ChatAnswering(platform, name, text if msg is None else msg.text))
        if self.cast is not None:
            return await self._answer_as_group(candidate, text, platform, speaker, name)
        handle = self.companion.reply(
            text, conversation_id=f"stream:{platform}", speaker_id=speaker, speaker_name=name, platform=platform
        )
        written = await handle.written()  # posted to chat at once; the next answer waits until this one was said
        poster = self.posters.get(platform)
        if poster is not None and written.reply and not written.error:
            try:
                await poster(platform, written.reply[:500])
            except Exception as exc:  # noqa: BLE001 - chat posting is best effort
                log.warning("stream: could not post to %s: %s", platform, exc)
        result = await handle.wait()
        self.answers.append((candidate, result))
        return result

    async def _answer_as_group(self, candidate: Candidate, text: str, platform: str, speaker: str, name: str) -> "TurnResult":
        """Each character who answers posts her line to chat under her name, once it has been said."""

        async def post(line: Any) -> None:
            if self.on_line is not None:
                self.on_line(line)
            poster = self.posters.get(platform)
            if poster is not None and line.result.reply and not line.result.error:
                try:
                    await poster(platform, f"{line.character}: {line.result.reply}"[:500])
                except Exception as exc:  # noqa: BLE001 - chat posting is best effort
                    log.warning("stream: could not post to %s: %s", platform, exc)

        lines = await self.cast.respond(
            text, conversation_id=f"stream:{platform}", speaker_id=speaker, speaker_name=name, platform=platform, on_line=post,
        )
        result = lines[0].result if lines else _nothing_said()
        self.answers.append((candidate, result))
        return result

    async def run(self, stop: asyncio.Event, *, quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Answer candidates one at a time, each once she has stopped speaking; speak up when chat is quiet."""
        until_quiet = quiet or self.companion.until_quiet
        while not stop.is_set():
            waiting = asyncio.ensure_future(until_quiet())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            stopping.cancel()
            if stop.is_set():
                break
            candidate = self.prioritiser.next()
            if candidate is not None:
                await self.answer(candidate)
                continue
            if self.speak_up.due():
                await self._speak_up()
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 1.0)
            except TimeoutError:
                pass

    async def _speak_up(self) -> None:
        self.speak_up.spoke()
        topics = ["something you remember about the people here", "what you have been thinking about today",
                  "a question for chat", "a fun fact you like"]
        prompt = (f"(Nobody has said anything for a while. Start something yourself: {random.choice(topics)}. "
                  "One or two sentences.)")
        self.companion.bus.publish(ChatAnswering("stream", "", "(speaking up)"))
        options = {
            "conversation_id": "stream:twitch", "speaker_id": "stream:director", "speaker_name": "Director",
            "platform": "stream", "priority": Priority.COMMENTARY,
        }
        if self.cast is not None:  # a group: one of them starts, the others may answer (within [group] banter)
            starter = self.cast.policy.starter()
            await self.cast.respond(prompt.replace("yourself", "yourself, to the others or to chat"), first=starter, **options)
            return
        await self.companion.respond(prompt, **options)


def _event_text(msg: ChatMessage) -> str:
    if msg.kind == "chat" or msg.kind == "superchat":
        return msg.text if msg.kind == "chat" else f"(super chat of {msg.amount:g}) {msg.text}"
    descriptions = {
        "follow": "just followed the channel",
        "sub": "just subscribed",
        "gift": f"gifted {msg.amount:g} subs",
        "cheer": f"cheered {msg.amount:g} bits",
        "raid": f"is raiding with {msg.amount:g} viewers",
        "redeem": "redeemed a channel-point reward",
    }
    what = descriptions.get(msg.kind, msg.kind)
    return f"({what}) {msg.text}".strip()


def _nothing_said() -> "TurnResult":
    """A group turn stopped before anyone spoke (barge-in, shutdown)."""
    from companion.core.turn import TurnResult

    return TurnResult("", "", [], [], True, None, {})
