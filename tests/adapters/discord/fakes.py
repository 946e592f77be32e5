"""Stand-ins for the discord.py objects the adapter touches (only the attributes it uses)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    references: list[Any] = field(default_factory=list)
    typing_count: int = 0

    @contextlib.asynccontextmanager
    async def typing(self):
        self.typing_count += 1
        yield

    async def send(self, text: str, allowed_mentions: Any = None, reference: Any = None) -> None:
        self.sent.append((text, allowed_mentions))
        self.references.append(reference)


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


class PacedVoiceClient:
    """discord.py's voice client as its player drives it: one 20 ms read of our AudioSource every 20 ms of the wall
    clock, each frame Opus-encoded (and decoded back, to hear it), until an empty read."""

    def __init__(self, on_level: Callable[[float], None] | None = None) -> None:
        import discord.opus

        self.encoder, self.decoder = discord.opus.Encoder(), discord.opus.Decoder()
        self.on_level = on_level  # the peak (0..1) of each frame as a listener hears it
        self.packets: list[bytes] = []
        self.first_frame_at: float | None = None  # when the first audible frame went out
        self.plays = 0
        self._task: asyncio.Task[None] | None = None

    def is_connected(self) -> bool:
        return True

    def is_playing(self) -> bool:
        return self._task is not None and not self._task.done()

    def play(self, source: Any) -> None:
        self.plays += 1

        async def player() -> None:
            next_at = time.monotonic()
            while frame := source.read():
                packet = self.encoder.encode(frame, self.encoder.SAMPLES_PER_FRAME)
                peak = float(np.abs(np.frombuffer(self.decoder.decode(packet, fec=False), dtype="<i2")).max()) / 32768
                if self.first_frame_at is None and peak > 0.03:
                    self.first_frame_at = time.monotonic()
                if self.on_level is not None:
                    self.on_level(peak)
                self.packets.append(packet)
                next_at += 0.02
                # real time on purpose: Discord's sender paces packets by the wall clock, and the tests measure
                # what a listener hears while the reply is still being written (a real server, real tokens)
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        self._task = asyncio.get_running_loop().create_task(player())

    async def disconnect(self, force: bool = False) -> None:
        pass
