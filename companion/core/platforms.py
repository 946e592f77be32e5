"""What differs from one platform to another, declared by the adapter that brings it, so the core names none.

A reply's platform decides three things: whether it is *heard* (a short budget; history keeps what the listener
heard, not what was written), whether it is for an audience (*broadcast*: every voice that broadcasts speaks it),
and whether the message came from an *audience chat* (quoted and attributed in the prompt, never instructions).
An adapter declares its platforms when its package is imported (``companion/stream/__init__.py`` declares
twitch, youtube and stream); a platform nobody declared is read, private and not a chat: the safe default.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Platform", "declare_platform", "platform", "declared"]


@dataclass(frozen=True)
class Platform:
    name: str
    heard: bool = False  # replies are listened to, not read
    broadcast: bool = False  # replies are for whoever is listening: every broadcasting voice speaks them
    audience_chat: bool = False  # messages are an audience's chat: quoted, attributed, never instructions


_DECLARED: dict[str, Platform] = {}


def declare_platform(name: str, *, heard: bool = False, broadcast: bool = False, audience_chat: bool = False) -> Platform:
    """Declare (or re-declare, identically) the traits of ``name``; a conflicting second declaration is a bug."""
    traits = Platform(name, heard=heard, broadcast=broadcast, audience_chat=audience_chat)
    known = _DECLARED.setdefault(name, traits)
    if known != traits:
        raise ValueError(f"platform {name!r} declared twice with different traits: {known} and {traits}")
    return traits


def platform(name: str) -> Platform:
    """The traits of ``name``: as declared, else read, private, not a chat."""
    return _DECLARED.get(name) or Platform(name)


def declared() -> dict[str, Platform]:
    return dict(_DECLARED)


# The core's own: announcements (reminders, timers) are said to whoever is listening.
declare_platform("announcement", broadcast=True)
