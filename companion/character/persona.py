"""Characters: Character Card V2/V3 (JSON, PNG, CHARX) -> ``Character``, and back to V3.

The card object as read is kept whole in ``Character.raw`` so export preserves
everything we do not interpret (unknown ``extensions`` above all, which other
tools store their settings in).
"""

from __future__ import annotations

import copy
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.character.cards import CardError, placeholder_png, read_card_file, write_png_card
from companion.character.lorebook import Lorebook
from companion.character.macros import expand
from companion.runtime.resources import bundled

__all__ = ["Character", "CardError", "load_character", "default_character", "substitute", "character_from_dict"]


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
    group_only_greetings: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    nickname: str = ""
    creator: str = ""
    character_version: str = ""
    book: Lorebook | None = None
    extensions: dict[str, Any] = field(default_factory=dict)
    spec: str = "chara_card_v2"
    source: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None  # the PNG the card came in, reused on PNG export

    @property
    def display_name(self) -> str:
        """What ``{{char}}`` means: the nickname when the card sets one (V3)."""
        return self.nickname or self.name

    def greeting_template(self, seed: str = "") -> str:
        """first_mes or one of the alternate greetings, picked once per conversation (``seed``), so the
        greeting a person sees is the one in the prompt, and new conversations do not always open alike."""
        options = [g for g in [self.first_mes, *self.alternate_greetings] if g.strip()]
        if not options:
            return ""
        return options[zlib.crc32(seed.encode()) % len(options)] if seed else options[0]

    def greeting(self, user: str, seed: str = "") -> str:
        return expand(self.greeting_template(seed), char=self.display_name, user=user, seed=seed)

    # -- export -----------------------------------------------------------------

    def to_v3(self) -> dict[str, Any]:
        """This character as a Character Card V3 object; unknown fields of the original survive."""
        out = copy.deepcopy(self.raw) if self.raw.get("spec") in ("chara_card_v2", "chara_card_v3") else {}
        found = out.get("data")
        data: dict[str, Any] = found if isinstance(found, dict) else {}
        data.update(
            {
                "name": self.name,
                "description": self.description,
                "personality": self.personality,
                "scenario": self.scenario,
                "first_mes": self.first_mes,
                "mes_example": self.mes_example,
                "creator_notes": self.creator_notes,
                "system_prompt": self.system_prompt,
                "post_history_instructions": self.post_history_instructions,
                "alternate_greetings": list(self.alternate_greetings),
                "group_only_greetings": list(self.group_only_greetings),
                "tags": list(self.tags),
                "creator": self.creator,
                "character_version": self.character_version,
                "extensions": copy.deepcopy(self.extensions),
            }
        )
        if self.nickname:
            data["nickname"] = self.nickname
        if self.book is not None:
            data["character_book"] = copy.deepcopy(self.book.raw)
        data.setdefault("creation_date", int(time.time()))
        data["modification_date"] = int(time.time())
        out.update({"spec": "chara_card_v3", "spec_version": "3.0", "data": data})
        return out

    def to_v2(self) -> dict[str, Any]:
        """A V2 copy for older readers (written beside V3 in PNG exports, as SillyTavern does)."""
        v3 = self.to_v3()
        v3_only = ("nickname", "group_only_greetings", "assets", "source", "creation_date", "modification_date", "creator_notes_multilingual")
        data = {k: v for k, v in v3["data"].items() if k not in v3_only}
        return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}

    def export_png(self) -> bytes:
        return write_png_card(self.image or placeholder_png(), self.to_v3(), v2_copy=self.to_v2())


def substitute(text: str, *, char: str, user: str, seed: str = "") -> str:
    """Expand card macros (``{{char}}``, ``{{user}}``, ``{{pick:…}}``, …)."""
    return expand(text, char=char, user=user, seed=seed)


def load_character(path: str | Path) -> Character:
    """Load a card from JSON (V1/V2/V3), PNG (``chara``/``ccv3``) or CHARX."""
    path = Path(path).expanduser()
    raw, png = read_card_file(path)
    character = character_from_dict(raw, path)
    character.image = png
    return character


def character_from_dict(raw: Any, source: Path | None = None) -> Character:
    where = f"character card {source}" if source else "character card"
    if not isinstance(raw, dict):
        raise CardError(f"{where}: expected a JSON object at the top level")
    spec = raw.get("spec")
    if spec is not None and spec not in ("chara_card_v2", "chara_card_v3"):
        raise CardError(f"{where}: unknown spec {spec!r} (expected chara_card_v2 or chara_card_v3)")
    nested = raw.get("data")
    data: dict[str, Any] = nested if isinstance(nested, dict) else raw
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

    extensions = data.get("extensions") or {}
    if not isinstance(extensions, dict):
        raise CardError(f"{where}: field 'extensions' should be an object")
    book = None
    if isinstance(data.get("character_book"), dict):
        try:
            book = Lorebook.from_dict(data["character_book"], where)
        except (ValueError, TypeError) as exc:
            raise CardError(f"{where}: invalid character_book: {exc}") from None
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
        group_only_greetings=strings("group_only_greetings"),
        tags=strings("tags"),
        nickname=text("nickname"),
        creator=text("creator"),
        character_version=text("character_version"),
        book=book,
        extensions=extensions,
        spec=spec or "chara_card_v1",
        source=source,
        raw=raw,
    )


def default_character() -> Character:
    return load_character(bundled("persona") / "default.json")


def slug(name: str) -> str:
    """A file-system-safe name for an imported character."""
    import re

    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-").lower()
    return cleaned or "character"


def resolve_card(ref: str, personas_dir: Path) -> Path:
    """A card reference is a file path, or the name of a character imported into ``personas_dir``."""
    path = Path(ref).expanduser()
    if path.exists():
        return path
    for candidate in (personas_dir / f"{slug(ref)}.png", personas_dir / f"{slug(ref)}.json"):
        if candidate.exists():
            return candidate
    raise _not_found(ref, personas_dir, "not a file, and not an imported character")


def imported_names(personas_dir: Path) -> list[str]:
    """The characters imported into ``personas_dir`` (by file name)."""
    if not personas_dir.is_dir():
        return []
    return sorted({p.stem for p in personas_dir.glob("*.json")} | {p.stem for p in personas_dir.glob("*.png")})


def _not_found(ref: str, personas_dir: Path, what: str) -> CardError:
    known = imported_names(personas_dir)
    hint = f"imported characters: {', '.join(known)}" if known else "import one with `companion persona import CARD`"
    return CardError(f"no character card {ref!r}: {what} ({hint})")


MAX_CARD_BYTES = 32 * 1024 * 1024  # a PNG card with a large image; anything bigger is not a card


def resolve_imported(name: str, personas_dir: Path) -> Path:
    """An imported character by name only (what a web page may ask for): no paths, a regular file, not huge."""
    if not name or any(c in name for c in "/\\~\0") or name.startswith("."):
        raise CardError("give the name of an imported character, not a path (import cards with `companion persona import`)")
    for candidate in (personas_dir / f"{slug(name)}.png", personas_dir / f"{slug(name)}.json"):
        if candidate.is_file() and not candidate.is_symlink():
            if candidate.stat().st_size > MAX_CARD_BYTES:
                raise CardError(f"{candidate.name} is larger than {MAX_CARD_BYTES // 2**20} MiB; not a character card")
            return candidate
    raise _not_found(name, personas_dir, "not an imported character")


def import_character(source: Path, personas_dir: Path) -> tuple[Character, Path]:
    """Copy a card into the user's persona folder as V3 (PNG cards keep their image)."""
    character = load_character(source)
    personas_dir.mkdir(parents=True, exist_ok=True)
    if character.image is not None:
        target = personas_dir / f"{slug(character.name)}.png"
        data = character.export_png()
    else:
        import json

        target = personas_dir / f"{slug(character.name)}.json"
        data = json.dumps(character.to_v3(), ensure_ascii=False, indent=2).encode()
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return character, target
