"""A chat message or stream event from any platform."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

__all__ = ["ChatMessage", "EVENT_KINDS"]

_ids = itertools.count(1)

# chat | follow | sub | gift | cheer | raid | redeem | superchat
EVENT_KINDS = ("chat", "follow", "sub", "gift", "cheer", "raid", "redeem", "superchat")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    platform: str
    user_id: str
    user_name: str
    text: str
    kind: str = "chat"
    amount: float = 0.0  # bits, gifted subs, raid viewers, super chat value: how much it is worth
    mentions_bot: bool = False
    at: float = field(default_factory=time.monotonic)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def speaker_id(self) -> str:
        return f"{self.platform}:{self.user_id}"
