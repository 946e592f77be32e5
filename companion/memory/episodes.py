"""Episodic memory rules (pure): what a person said worth keeping, its topic, and whether a fact is grounded.

Episodic memory keeps a person's own words, so remembering works even with a
model too small to extract facts. These rules decide which words to keep,
which older statement a newer one replaces ("my favourite colour is now
lavender" over "... is teal"), and which extracted facts to trust (only those
whose content words the person actually said).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

__all__ = ["worth_remembering", "topic_key", "is_change", "grounded", "age_words", "content_words"]

_GREETING = re.compile(r"^\W*(hi|hello|hey|yo|good (morning|evening|night|afternoon)|thanks?|thank you|bye|ok(ay)?)\b", re.I)
# Asked of her rather than told about them ("Tell me something funny.", "what do you think about space travel"): a
# transcript or a chat line often has no "?". Kept as their words, a request came back in every later recall
# (bench/bench_turns.py: "Tell me something funny." in each memory note from the thirteenth turn on).
_OPENER = re.compile(r"^\W*(?:(?:hey|hi|ok(?:ay)?|so|well|oh|and|please)\b(?: \w+,|,)?\s+)*", re.I)
_ASKED = re.compile(
    r"(?:tell|give|show|sing|say|read|write|make|help|teach|explain|describe|recommend|suggest|guess|list|name)"
    r" (?:me|us|a|an|some|something|anything|another|one|more|the|your|what|how|who|why)\b"
    r"|(?:let'?s|let us)\b"
    r"|(?:do|does|did|can|could|would|will|are|is|should|have|has|shall) (?:you|u|we)\b"
    r"|(?:what|who|where|which|why|how) (?:is|are|was|were|do|does|did|can|could|would|should|will|about)\b",
    re.I,
)
_CHANGE = re.compile(
    r"\b(now|anymore|any more|no longer|actually|changed|switched|moved|instead|these days|nowadays|not \w+ any ?more)\b",
    re.I,
)
# "my X is/are/was (now) ...", "my X's name is ...", "I work as", "I live in" ...: the X is the topic.
_MY_TOPIC = re.compile(
    r"\bmy ((?:[a-z]+ ){0,3}?[a-z]+?)(?:'s name)? (?:is|are|was|were|has been|'s)\b(?! (?:a|an|the|so|very|really|just)\b \w+ing)",
    re.I,
)
_TOPICS = (
    (re.compile(r"\bi(?:'m| am)? (?:now |currently )?(?:work(?:ing)? as|employed as|(?:a|an) \w+ by trade)\b", re.I), "job"),
    (re.compile(r"\bi(?:'ve| have)? (?:changed|switched|got a new|started a new) (?:jobs?|careers?)\b", re.I), "job"),
    (re.compile(r"\bi (?:now )?(?:live|am living|'m living) in\b|\bi(?:'ve| have)? moved to\b", re.I), "home"),
    (re.compile(r"\bmy name is\b|\bcall me\b", re.I), "name"),
    (re.compile(r"\bi(?:'m| am) \d+ (?:years? old)?\b", re.I), "age"),
)
_STOP = frozenset(
    "the a an and or but of to in on at for with from by about as is are was were be been being has have had do does did "
    "this that these those it its they them their there here his her hers him he she we us our you your yours i me my "
    "mine not no yes very really just also too so than then now who whom which what when where why how all any some "
    "called named name likes like loves love enjoys enjoy wants want user person someone people thing things".split()
)
_WORD = re.compile(r"[a-zà-ÿ0-9]+", re.I)


def worth_remembering(text: str) -> bool:
    """A statement of some substance: not a question, a request to her, a greeting or a two-word reply."""
    words = text.split()
    if len(words) < 4 or text.rstrip().endswith("?"):
        return False
    opener = _OPENER.match(text)  # "Hey Mika, ", "ok so ": may be empty, always matches
    if _ASKED.match(text, opener.end() if opener else 0):
        return False
    return not (_GREETING.match(text) and len(words) < 6)


def topic_key(text: str) -> str | None:
    """What a statement is about when it names it ("favourite colour", "job"), else None."""
    for pattern, topic in _TOPICS:
        if pattern.search(text):
            return topic
    match = _MY_TOPIC.search(text)
    if match:
        return " ".join(match.group(1).lower().split())
    return None


def is_change(text: str) -> bool:
    """Does the person say something changed ("now", "no longer", "moved")?"""
    return bool(_CHANGE.search(text))


def content_words(text: str, ignore: Iterable[str] = ()) -> set[str]:
    skip = _STOP | {w.lower() for name in ignore for w in _WORD.findall(name)}
    return {w.lower() for w in _WORD.findall(text) if len(w) >= 3 and w.lower() not in skip}


def grounded(fact: str, said: str, ignore: Iterable[str] = (), share: float = 0.5) -> bool:
    """Are at least ``share`` of the fact's content words (names ignored) in what the person said?

    Words match on their first five letters, so "cats" grounds "cat" and
    "visiting" grounds "visits"; a fact with no content word is not grounded.
    """
    words = content_words(fact, ignore)
    if not words:
        return False
    heard = content_words(said)
    stems = {w[:5] for w in heard}
    found = sum(1 for w in words if w in heard or w[:5] in stems)
    return found / len(words) >= share


def age_words(created_at: float, now: float | None = None) -> str:
    """'today', 'yesterday', '3 days ago', '2 weeks ago', '5 months ago'."""
    days = int(((now if now is not None else time.time()) - created_at) // 86400)
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 14:
        return f"{days} days ago"
    if days < 60:
        return f"{days // 7} weeks ago"
    return f"{days // 30} months ago"
