"""Who speaks next in a group of characters: pure logic, after SillyTavern's group activation.

A person's message is answered first by the characters it names, in the order it names them; one to all of
them ("which of you...", "you two", "everyone") by all of them, the most talkative first; otherwise by
"natural" order: each character joins with the chance of its talkativeness (a card's
``extensions.talkativeness``, 0.5 when it has none), and the host answers when nobody else would. After a
character speaks, another may answer it: one it named first, else one who is talkative enough, up to
``banter`` exchanges between characters before a person speaks again. Nobody speaks twice in a row unless
named. Quiet mode (a stream's quiet button) leaves only the answer to the person.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

__all__ = ["GroupMember", "GroupPolicy"]

# "Which of you...?", "you two", "everyone": a question to the whole group, which each of them answers.
_EVERYONE = re.compile(
    r"\b(?:(?:which|both|all|each|either|any|one|none|who) of you|you (?:two|both|all|guys)|everyone|everybody|y'all)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class GroupMember:
    name: str
    talkativeness: float = 0.5  # 0: speaks only when named (or as the host, when nobody else would); 1: always joins
    host: bool = False


class GroupPolicy:
    """The order of speakers for one message, and whether the characters go on talking among themselves."""

    def __init__(self, members: list[GroupMember], *, banter: int = 2, rng: random.Random | None = None) -> None:
        if not members:
            raise ValueError("a group needs at least one character")
        names = [m.name.lower() for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"two characters in the group share a name ({', '.join(m.name for m in members)}): rename one")
        self.members = members
        self.host = next((m for m in members if m.host), members[0])
        self.banter = banter
        self.rng = rng or random.Random()
        self._patterns = {m.name: re.compile(rf"(?<![\w]){re.escape(m.name)}(?![\w])", re.IGNORECASE) for m in members}

    def named(self, text: str, *, exclude: str = "") -> list[str]:
        """Members named in ``text``, in the order they first appear."""
        found = [(match.start(), name) for name, pattern in self._patterns.items() if name != exclude and (match := pattern.search(text))]
        return [name for _, name in sorted(found)]

    def answer_person(self, text: str, *, last_speaker: str = "") -> list[str]:
        """Who answers a person's message, in order (never empty)."""
        named = self.named(text)
        if named:
            return named
        # most talkative first; a tie keeps the configured order
        ranked = sorted(self.members, key=lambda m: -m.talkativeness)
        if _EVERYONE.search(text):
            return [m.name for m in ranked if m.name != last_speaker] + [m.name for m in ranked if m.name == last_speaker]
        joined = [m.name for m in ranked if m.name != last_speaker and self.rng.random() < m.talkativeness]
        if joined:
            return joined
        if self.host.name != last_speaker or len(self.members) == 1:
            return [self.host.name]
        return [next(m.name for m in ranked if m.name != last_speaker)]

    def starter(self) -> str:
        """Who starts something in a quiet moment: one of them, the talkative more often; the host if none is."""
        weights = [m.talkativeness for m in self.members]
        if sum(weights) <= 0:
            return self.host.name
        return self.rng.choices(self.members, weights=weights)[0].name

    def answer_character(self, speaker: str, text: str, *, exchanges: int, quiet: bool = False) -> str | None:
        """Who answers what character ``speaker`` just said (the ``exchanges``-th line between characters since
        a person last spoke), or None: the characters let the person speak."""
        if quiet or exchanges >= self.banter or len(self.members) < 2:
            return None
        named = self.named(text, exclude=speaker)
        if named:
            return named[0]
        others = sorted((m for m in self.members if m.name != speaker), key=lambda m: -m.talkativeness)
        for member in others:
            if self.rng.random() < member.talkativeness / 2:  # joining in unasked is rarer than answering a person
                return member.name
        return None
