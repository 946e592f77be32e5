"""Pure helpers for memory: forget requests, the extraction prompt and its parsing, prompt rendering."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from companion.runtime.jsonschemas import validation_error
from companion.text.chunking import first_json_object

__all__ = ["forget_intent", "forget_topic", "extraction_messages", "EXTRACTION_SCHEMA", "parse_extraction", "Fact"]

_FORGET_ALL = re.compile(
    r"\bforget (?:everything|all|anything) (?:about|of|you know about) me\b|\bforget (?:about )?me\b|\bforget who i am\b|"
    r"\bdelete (?:everything|all) (?:about|of) me\b",
    re.IGNORECASE,
)
_FORGET_LAST = re.compile(
    r"\bforget (?:that|this|it|what i (?:just )?(?:said|told you))\b|\bdon'?t remember (?:that|this)\b",
    re.IGNORECASE,
)


_FORGET_TOPIC = re.compile(
    # asked of the companion ("please forget my...", "Forget my..."), not "I forget my keys"
    r"(?:^|[.!?]\s*|\b(?:please|can you|could you|would you|will you|you can|just|now|and|so|ok|okay),?\s+)"
    r"(?:forget|don'?t remember|delete) (?:about |what i (?:said|told you) about )?(?:my|that i (?:have|had|am|like)) "
    r"([^.!?,;]{2,60})",
    re.IGNORECASE,
)


def forget_intent(text: str) -> str | None:
    """"all" for "forget everything about me", "last" for "forget that", "topic" for "forget my allergy", else None."""
    if _FORGET_ALL.search(text):
        return "all"
    if _FORGET_LAST.search(text):
        return "last"
    if _FORGET_TOPIC.search(text):
        return "topic"
    return None


def forget_topic(text: str) -> str | None:
    """The topic of "forget my peanut allergy" ("peanut allergy"), or None."""
    match = _FORGET_TOPIC.search(text)
    return " ".join(match.group(1).split()) if match else None


EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "about": {"type": "string", "enum": ["user", "self"]},
                    "subject": {"type": "string", "maxLength": 40},
                    "fact": {"type": "string", "maxLength": 200},
                    "importance": {"type": "integer", "minimum": 1, "maximum": 10},
                },
                "required": ["about", "subject", "fact", "importance"],
            },
        }
    },
    "required": ["facts"],
}


@dataclass(frozen=True, slots=True)
class Fact:
    about: str  # "user" or "self"
    subject: str
    fact: str
    importance: float  # 0..1


def extraction_messages(char: str, user: str, user_text: str, reply: str) -> list[dict[str, Any]]:
    system = (
        f"You extract long-term memories for {char}, an AI companion. From the exchange below, list durable facts "
        f"worth remembering for weeks: about {user} (name, likes, plans, people and pets, events in their life) and "
        f"about {char}'s own experiences. Skip small talk, greetings and anything temporary. Each fact is one short "
        "sentence in the third person with a short subject key (e.g. 'favourite colour', 'dog name') and an "
        'importance from 1 (trivia) to 10 (life event). Reply with JSON only: {"facts": [...]} (an empty list is fine).'
    )
    user_msg = f"{user}: {user_text}\n{char}: {reply}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user_msg}]


def parse_extraction(text: str) -> list[Fact]:
    """Facts from the model's JSON; anything malformed is dropped rather than stored."""
    obj = first_json_object(text)
    if obj is None or not isinstance(obj.get("facts"), list):
        return []
    facts = []
    seen: set[str] = set()
    for item in obj["facts"][:8]:
        if not isinstance(item, dict) or validation_error(item, EXTRACTION_SCHEMA["properties"]["facts"]["items"]):
            continue
        fact = " ".join(item["fact"].split())
        key = fact.lower().rstrip(".!")
        # a bare word ("Biscuit") is not a memory: small models emit those, and recall would surface them out of context
        if len(fact) < 8 or len(fact.split()) < 3 or key in seen:
            continue
        seen.add(key)
        facts.append(Fact(item["about"], item["subject"].strip(), fact, float(item["importance"]) / 10))
    return facts


def render_memories(char: str, user: str, about_user: Sequence[str], about_self: Sequence[str], budget_chars: int) -> str:
    """The recalled lines for the prompt, cut to the budget (in the order given: newest first)."""
    lines: list[str] = []
    used = 0
    for item in [*about_user, *(f"(about yourself) {s}" for s in about_self)]:
        if used + len(item) > budget_chars:
            break
        lines.append(f"- {item}")
        used += len(item) + 3
    return "\n".join(lines)
