"""Who gets an answer on Discord, and how it is cut: pure logic, no discord.py, no I/O."""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["MessageFacts", "answer_reason", "split_reply", "RateLimiter", "EMOJI_FOR"]

LIMIT = 2000


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What matters about a message for deciding whether to answer it."""

    author_id: int
    author_is_bot: bool
    is_self: bool
    is_dm: bool
    mentions_bot: bool
    replies_to_bot: bool
    channel_id: int
    text: str
    has_images: bool = False


def answer_reason(
    facts: MessageFacts, *, channels: set[int], answer_dms: bool, allow_bots: bool, blocked: set[int]
) -> str | None:
    """Why the companion answers (mention, reply, dm, channel), or None to stay quiet."""
    if facts.is_self or facts.author_id in blocked:
        return None
    if facts.author_is_bot and not allow_bots:
        return None
    if not facts.text.strip() and not facts.has_images:
        return None
    if facts.is_dm:
        return "dm" if answer_dms else None
    if facts.mentions_bot:
        return "mention"
    if facts.replies_to_bot:
        return "reply"
    if facts.channel_id in channels:
        return "channel"
    return None


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


def split_reply(text: str, limit: int = LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at sentence ends (then spaces, then anywhere)."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current = ""
    for sentence in (s for s in _SENTENCE_END.split(text) if s):
        while len(sentence) > limit:  # a single sentence longer than the limit: cut at a space
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].rstrip())
            sentence = sentence[cut:].lstrip()
        candidate = f"{current} {sentence}" if current else sentence
        if len(candidate) <= limit:
            current = candidate
        else:
            pieces.append(current)
            current = sentence
    if current:
        pieces.append(current)
    return pieces


PRUNE_KEYS_OVER = 1000  # people (or channels) a rate limiter tracks before it forgets the quiet ones


class RateLimiter:
    """At most ``per_minute`` events per key in any 60 s window."""

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._events: dict[object, deque[float]] = {}

    def allow(self, key: object) -> bool:
        now = self.clock()
        if len(self._events) > PRUNE_KEYS_OVER:  # thousands of people a day: forget those quiet for a minute
            self._events = {k: w for k, w in self._events.items() if w and now - w[-1] < 60}
        window = self._events.setdefault(key, deque())
        while window and now - window[0] >= 60:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(now)
        return True


EMOJI_FOR = {
    "happy": "😊", "sad": "😢", "angry": "😠", "surprised": "😮", "embarrassed": "😳", "thinking": "🤔",
    "excited": "🤩", "scared": "😨", "love": "❤️", "laugh": "😂", "neutral": "🙂",
}
