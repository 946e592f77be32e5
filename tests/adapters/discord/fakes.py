"""Stand-ins for the discord.py objects the adapter touches (only the attributes it uses)."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1000)


@dataclass
class User:
    id: int
    display_name: str = "someone"
    bot: bool = False
    voice: Any = None


@dataclass
class Guild:
    id: int = 1


@dataclass
class Channel:
    id: int
    guild: Guild | None = None
    name: str = "general"
    sent: list[tuple[str, Any]] = field(default_factory=list)
    typing_count: int = 0

    @contextlib.asynccontextmanager
    async def typing(self):
        self.typing_count += 1
        yield

    async def send(self, text: str, allowed_mentions: Any = None) -> None:
        self.sent.append((text, allowed_mentions))


@dataclass
class Attachment:
    url: str
    content_type: str = "image/png"


@dataclass
class Reference:
    resolved: Any


@dataclass
class Message:
    author: User
    content: str
    channel: Channel
    mentions: list[User] = field(default_factory=list)
    reference: Reference | None = None
    attachments: list[Attachment] = field(default_factory=list)
    id: int = field(default_factory=lambda: next(_ids))
    reactions: list[str] = field(default_factory=list)

    @property
    def guild(self) -> Guild | None:
        return self.channel.guild

    async def reply(self, text: str, mention_author: bool = True, allowed_mentions: Any = None) -> None:
        self.channel.sent.append((text, allowed_mentions))

    async def add_reaction(self, emoji: str) -> None:
        self.reactions.append(emoji)


@dataclass
class Response:
    messages: list[tuple[str, bool]] = field(default_factory=list)
    deferred: bool = False

    async def send_message(self, text: str, ephemeral: bool = False) -> None:
        self.messages.append((text, ephemeral))

    async def defer(self, thinking: bool = False) -> None:
        self.deferred = True


@dataclass
class Followup:
    messages: list[str] = field(default_factory=list)

    async def send(self, text: str, allowed_mentions: Any = None) -> None:
        self.messages.append(text)


@dataclass
class Interaction:
    user: User
    channel: Channel
    guild: Guild | None = None
    response: Response = field(default_factory=Response)
    followup: Followup = field(default_factory=Followup)
