"""Lorebook (``character_book``) activation: which entries go into this turn's prompt.

Pure: takes the book and the recent messages, returns the entries to insert
before and after the character definition, within the token budget.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import regex

from companion.text.tokens import estimate_tokens

log = logging.getLogger(__name__)

__all__ = ["LoreEntry", "Lorebook", "ActivatedLore", "estimate_tokens", "REGEX_TIMEOUT_S"]

REGEX_TIMEOUT_S = 0.05


@dataclass(slots=True)
class LoreEntry:
    keys: list[str]
    content: str
    enabled: bool = True
    insertion_order: int = 100
    case_sensitive: bool = False
    use_regex: bool = False
    constant: bool = False
    selective: bool = False
    secondary_keys: list[str] = field(default_factory=list)
    priority: int = 10
    position: str = "before_char"
    name: str = ""
    id: Any = None
    disabled_keys: set[str] = field(default_factory=set)  # regex keys that ran past the time limit

    @classmethod
    def from_dict(cls, raw: dict[str, Any], index: int, where: str) -> "LoreEntry":
        def strs(key: str) -> list[str]:
            value = raw.get(key) or []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                raise ValueError(f"{where}: lorebook entry #{index} field {key!r} should be a list of strings")
            return [str(v) for v in value if str(v)]

        position = raw.get("position") or "before_char"
        return cls(
            keys=strs("keys"),
            content=str(raw.get("content") or ""),
            enabled=bool(raw.get("enabled", True)),
            insertion_order=int(raw.get("insertion_order", 100) or 0),
            case_sensitive=bool(raw.get("case_sensitive") or False),
            use_regex=bool(raw.get("use_regex") or False),
            constant=bool(raw.get("constant") or False),
            selective=bool(raw.get("selective") or False),
            secondary_keys=strs("secondary_keys"),
            priority=int(raw.get("priority", 10) or 0),
            position=position if position in ("before_char", "after_char") else "before_char",
            name=str(raw.get("name") or raw.get("comment") or ""),
            id=raw.get("id", index),
        )

    def _matches(self, key: str, text: str) -> bool:
        if self.use_regex:
            if key in self.disabled_keys:
                return False
            pattern, flags = key, 0 if self.case_sensitive else regex.IGNORECASE
            slashed = re.fullmatch(r"/(.*)/([a-z]*)", key, re.DOTALL)
            if slashed:
                pattern = slashed.group(1)
                flags = regex.IGNORECASE if "i" in slashed.group(2) else 0
            try:
                # A card's regex runs on every message people send: a catastrophic
                # one (e.g. /(a+)+$/) must not freeze replies, so it has a time limit.
                return regex.search(pattern, text, flags, timeout=REGEX_TIMEOUT_S) is not None
            except TimeoutError:
                self.disabled_keys.add(key)
                log.warning(
                    "lorebook entry %r: regex %r took over %g ms on a message and is disabled; simplify it in the card",
                    self.name or self.id, key, REGEX_TIMEOUT_S * 1000,
                )
                return False
            except (regex.error, re.error):
                self.disabled_keys.add(key)
                log.warning("lorebook entry %r: invalid regex %r ignored", self.name or self.id, key)
                return False
        if self.case_sensitive:
            return key in text
        return key.lower() in text.lower()

    def activated_by(self, text: str) -> bool:
        if not self.enabled:
            return False
        if self.constant:
            return True
        if not any(self._matches(k, text) for k in self.keys):
            return False
        if self.selective and self.secondary_keys:
            return any(self._matches(k, text) for k in self.secondary_keys)
        return True


@dataclass(slots=True)
class ActivatedLore:
    before_char: list[LoreEntry] = field(default_factory=list)
    after_char: list[LoreEntry] = field(default_factory=list)

    @property
    def all(self) -> list[LoreEntry]:
        return self.before_char + self.after_char


@dataclass(slots=True)
class Lorebook:
    entries: list[LoreEntry]
    scan_depth: int = 4
    token_budget: int = 512
    recursive_scanning: bool = False
    name: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # as read, for lossless export

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> "Lorebook":
        entries = raw.get("entries") or []
        if isinstance(entries, dict):  # some exporters key entries by id
            entries = list(entries.values())
        if not isinstance(entries, list):
            raise ValueError(f"{where}: character_book.entries should be a list")
        return cls(
            entries=[LoreEntry.from_dict(e, i, where) for i, e in enumerate(entries) if isinstance(e, dict)],
            scan_depth=int(raw.get("scan_depth") or 4),
            token_budget=int(raw.get("token_budget") or 512),
            recursive_scanning=bool(raw.get("recursive_scanning") or False),
            name=str(raw.get("name") or ""),
            raw=raw,
        )

    @property
    def uses_regex(self) -> bool:
        """True when activation runs card-supplied regexes (then callers run it off the event loop)."""
        return any(e.use_regex and e.enabled and not e.constant for e in self.entries)

    def activate(self, recent: Sequence[str]) -> ActivatedLore:
        """Entries triggered by the last ``scan_depth`` messages (``recent`` is oldest first)."""
        window = "\n".join(recent[-self.scan_depth :]) if self.scan_depth > 0 else ""
        chosen: list[LoreEntry] = []
        pending = [e for e in self.entries if e.enabled]
        scan = window
        for _ in range(3 if self.recursive_scanning else 1):
            newly = [e for e in pending if e.activated_by(scan)]
            if not newly:
                break
            chosen.extend(newly)
            pending = [e for e in pending if e not in newly]
            scan = "\n".join(e.content for e in newly)  # recursion: activated text may trigger more
        # Budget: keep the most important entries; ties go to the earlier insertion order.
        kept: list[LoreEntry] = []
        used = 0
        for entry in sorted(chosen, key=lambda e: (-e.constant, -e.priority, e.insertion_order)):
            cost = estimate_tokens(entry.content)
            if used + cost > self.token_budget:
                continue
            kept.append(entry)
            used += cost
        kept.sort(key=lambda e: e.insertion_order)
        out = ActivatedLore()
        for entry in kept:
            (out.after_char if entry.position == "after_char" else out.before_char).append(entry)
        return out
