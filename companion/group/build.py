"""The cast that ``[[characters]]`` describes: settings per character, engines that share the host's LLM and history."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from companion.character.persona import Character, default_character, load_character, resolve_card
from companion.config import Settings
from companion.config.sections import CharacterEntry
from companion.group.cast import Cast, OwnVoice
from companion.group.policy import GroupMember, GroupPolicy

if TYPE_CHECKING:
    from companion.core.engine import Companion
    from companion.llm.base import LLM
    from companion.memory.embed import Embedder
    from companion.memory.manager import MemoryManager

DEFAULT_TALKATIVENESS = 0.5


def is_group(settings: Settings) -> bool:
    return len(settings.characters) >= 2


def host_index(settings: Settings) -> int:
    return next((i for i, e in enumerate(settings.characters) if e.host), 0)


def character_settings(settings: Settings, entry: CharacterEntry, *, host: bool) -> Settings:
    """``settings`` as this character sees them: its card, its reply budget, its voice; a co-host's data (its
    memory of people) in ``characters/NAME`` of the data folder, the host's where one character's would be."""
    own = settings.model_copy(deep=True)
    own.persona.card = entry.card
    if entry.max_tokens:
        own.llm.max_tokens = entry.max_tokens
    elif not host:
        own.llm.max_tokens = settings.group.cohost_max_tokens
    if entry.voice:
        own.voice.tts.voice = entry.voice
    return own


def load_entry(settings: Settings, entry: CharacterEntry) -> Character:
    if not entry.card:
        return default_character()
    return load_character(resolve_card(entry.card, settings.data_path() / "personas"))


def talkativeness(entry: CharacterEntry, character: Character) -> float:
    """The entry's, else the card's (SillyTavern keeps it in ``extensions.talkativeness``, often as a string)."""
    if entry.talkativeness >= 0:
        return entry.talkativeness
    try:
        value = float(character.extensions.get("talkativeness", DEFAULT_TALKATIVENESS))
    except (TypeError, ValueError):
        return DEFAULT_TALKATIVENESS
    return min(1.0, max(0.0, value))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "character"


def build_cast(
    settings: Settings,
    build_host: Callable[[Settings], Companion],
    build_memory: Callable[[Settings, LLM, Character, Embedder | None], MemoryManager | None],
    build_voice: Callable[[Settings], OwnVoice] | None = None,
    **cast_options: Any,
) -> Cast:
    """Every character's engine (nothing started yet): the host built as a single character would be, the
    others on the host's LLM scheduler and history, each with its own memory."""
    from companion.core.engine import Companion

    entries = settings.characters
    hosting = host_index(settings)
    host = build_host(character_settings(settings, entries[hosting], host=True))
    companions: list[Companion] = []
    members: list[GroupMember] = []
    voices: dict[str, OwnVoice] = {}
    for i, entry in enumerate(entries):
        if i == hosting:
            companion = host
        else:
            own = character_settings(settings, entry, host=False)
            character = load_entry(settings, entry)
            own.companion.data_dir = str(settings.data_path() / "characters" / slug(character.display_name))
            own.data_path().mkdir(parents=True, exist_ok=True)
            companion = Companion(
                own, llm=host.llm, character=character, history=host.history, bus=host.bus,
                memory=build_memory(own, host.llm, character, host.memory.embedder if host.memory is not None else None),
                moderator=host.moderator, owns_shared=False,
            )
        companions.append(companion)
        if entry.voice and i != hosting and build_voice is not None:  # the host's voice is every output's own
            voices[companion.character.display_name] = build_voice(companion.settings)
        members.append(GroupMember(companion.character.display_name, talkativeness(entry, companion.character), host=i == hosting))
    return Cast(companions, GroupPolicy(members, banter=settings.group.banter), voices=voices, **cast_options)
