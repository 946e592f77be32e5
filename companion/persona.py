"""Character cards (Character Card V2 JSON, minimal) and macro substitution.

Only what the prompt needs today; full V2/V3 import (PNG, CHARX, lorebooks)
belongs to the persona-and-memory work and will extend ``Character``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .resources import bundled

__all__ = ["Character", "CardError", "load_character", "default_character", "substitute"]

MAX_CARD_BYTES = 2 * 1024 * 1024


class CardError(Exception):
    """A character card that cannot be used; the message names the file and the problem."""


@dataclass(slots=True)
class Character:
    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    creator_notes: str = ""
    alternate_greetings: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: Path | None = None

    def greeting(self, user: str) -> str:
        return substitute(self.first_mes, char=self.name, user=user)


_MACRO_RE = re.compile(r"\{\{\s*(char|user)\s*\}\}|<(BOT|USER)>", re.IGNORECASE)


def substitute(text: str, *, char: str, user: str) -> str:
    """Replace ``{{char}}`` / ``{{user}}`` (and legacy ``<BOT>`` / ``<USER>``)."""

    def _sub(match: re.Match[str]) -> str:
        which = (match.group(1) or match.group(2)).lower()
        return char if which in ("char", "bot") else user

    return _MACRO_RE.sub(_sub, text)


def load_character(path: str | Path) -> Character:
    """Load a Character Card V2 (or V1 flat) JSON file."""
    path = Path(path).expanduser()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CardError(f"character card {path}: cannot be read ({exc.strerror}). hint: check [persona] card") from None
    if size > MAX_CARD_BYTES:
        raise CardError(f"character card {path}: {size} bytes is too large for a JSON card (limit {MAX_CARD_BYTES})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CardError(f"character card {path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError:
        raise CardError(
            f"character card {path}: not UTF-8 text; PNG and CHARX cards are not supported yet, export it as JSON"
        ) from None
    return character_from_dict(raw, path)


def character_from_dict(raw: Any, source: Path | None = None) -> Character:
    where = f"character card {source}" if source else "character card"
    if not isinstance(raw, dict):
        raise CardError(f"{where}: expected a JSON object at the top level")
    data = raw.get("data") if isinstance(raw.get("data"), dict) else raw
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CardError(f"{where}: the card has no 'name'; every character needs one")

    def text(key: str) -> str:
        value = data.get(key, "")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise CardError(f"{where}: field {key!r} should be text, got {type(value).__name__}")
        return value

    def strings(key: str) -> list[str]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CardError(f"{where}: field {key!r} should be a list of strings")
        return list(value)

    return Character(
        name=name.strip(),
        description=text("description"),
        personality=text("personality"),
        scenario=text("scenario"),
        first_mes=text("first_mes"),
        mes_example=text("mes_example"),
        system_prompt=text("system_prompt"),
        post_history_instructions=text("post_history_instructions"),
        creator_notes=text("creator_notes"),
        alternate_greetings=strings("alternate_greetings"),
        tags=strings("tags"),
        source=source,
    )


def default_character() -> Character:
    return load_character(bundled("persona") / "default.json")
