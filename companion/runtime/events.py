"""Typed events that travel over the bus.

Events are small frozen dataclasses: subscribers pick them by class (never by a
bare string name), so a typo is an ImportError rather than silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; subscribing to it receives everything."""


@dataclass(frozen=True, slots=True)
class UserMessage(Event):
    """Someone said or typed something to the companion."""

    conversation_id: str
    speaker_id: str
    text: str
    platform: str = "cli"


@dataclass(frozen=True, slots=True)
class TurnStarted(Event):
    turn_id: str
    conversation_id: str
    speaker_id: str
    character: str = ""  # who answers (a group has several; the avatar of each moves only for her own)


@dataclass(frozen=True, slots=True)
class TokenStreamed(Event):
    turn_id: str
    text: str


@dataclass(frozen=True, slots=True)
class SentenceReady(Event):
    """A sentence of the reply is complete: ready to show, speak and act out."""

    turn_id: str
    index: int
    text: str
    speech: str
    emotions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EmotionCue(Event):
    """The reply carries an emotion (from a tag like ``[happy]``) for the avatar."""

    turn_id: str
    emotion: str


@dataclass(frozen=True, slots=True)
class TurnEnded(Event):
    turn_id: str
    conversation_id: str
    reply: str
    interrupted: bool
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdapterStatus(Event):
    """An adapter or provider changed health (connected, reconnecting, error)."""

    name: str
    state: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SpeechStarted(Event):
    """A person started speaking (voice)."""

    conversation_id: str
    speaker_id: str


@dataclass(frozen=True, slots=True)
class Transcript(Event):
    """What a person said: partial while they speak (captions), then final."""

    conversation_id: str
    speaker_id: str
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class BargedIn(Event):
    """The person interrupted the companion; ``heard`` is what they had heard of the reply."""

    conversation_id: str
    turn_id: str
    heard: str


@dataclass(frozen=True, slots=True)
class VoiceTimings(Event):
    """Per-stage latency of one voice turn, in ms from the end of the person's speech."""

    conversation_id: str
    turn_id: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCalled(Event):
    """The model called a tool (``ok`` False: refused, failed or timed out)."""

    conversation_id: str
    name: str
    speaker_id: str
    ok: bool


@dataclass(frozen=True, slots=True)
class Announcement(Event):
    """Something the companion says unprompted (a reminder, a timer): shown, spoken, stored."""

    conversation_id: str
    text: str
    speaker_id: str = ""


# -- games (the Neuro API server) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class GameConnected(Event):
    connection_id: str
    game: str


@dataclass(frozen=True, slots=True)
class GameContextReceived(Event):
    connection_id: str
    game: str
    message: str
    silent: bool


@dataclass(frozen=True, slots=True)
class GameForceReceived(Event):
    connection_id: str
    game: str
    query: str
    priority: str
    action_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GameActionSent(Event):
    connection_id: str
    game: str
    action_id: str
    name: str
    data: object
    fallback: bool
    attempts: int
    decision_ms: float


@dataclass(frozen=True, slots=True)
class GameActionFinished(Event):
    connection_id: str
    game: str
    action_id: str
    name: str
    success: bool | None  # None: the game never answered within the timeout
    message: str = ""


@dataclass(frozen=True, slots=True)
class GameDisconnected(Event):
    connection_id: str
    game: str


# -- stream chat ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatAnswering(Event):
    """The companion is answering this chat message (or burst summary): for the OBS overlay."""

    platform: str
    user_name: str
    text: str
