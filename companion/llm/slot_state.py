"""llama.cpp slot states kept on disk, so a new process does not prefill what an old one already read.

Why: on a CPU, prefill is the cost of a reply's first word (SmolLM2-135M on two
cores reads about 200-300 prompt tokens a second), and a process that starts
anew (a restart, every one-shot ``companion chat -m``, a ``voice`` turn) has an
empty KV cache. llama.cpp can save a slot's KV cache to a file and load it back
in milliseconds (13 MB for 570 tokens of the embedded model: 7 ms to save, 6 ms
to restore, against 1.9 s to prefill). It compares the restored tokens with the
new prompt itself and reuses only their common prefix, so a stale file costs
time, never a wrong answer.

Two kinds of state are kept, each under a key:

- ``prefix:<hash>``: the stable start of every prompt (system prompt, the
  card's examples), saved at warm-up; a changed card is another hash.
- ``conversation:<id>``: a conversation as it stood after its last reply, so
  the next process reads only the new message.

Files are named by the model (path, size, modification time: another model or
a changed file never restores a state it did not write) and a hash of the key.
The folder is bounded in bytes: least recently used files go first, files of
other models before anything else.

Slot assignment is pure bookkeeping here (:class:`SlotPicker`); the provider
does the HTTP calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["SlotStates", "SlotPicker", "model_id", "prefix_key", "conversation_key"]

STALE_DAYS = 30  # a state nobody used for a month is dropped whatever the bound


def model_id(path: Path) -> str:
    """Identifies the model file a state belongs to: a state restored into another model would be garbage."""
    st = path.stat()
    raw = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def prefix_key(messages: list[dict[str, Any]]) -> str:
    return "prefix:" + hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def conversation_key(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


class SlotStates:
    """The folder of saved states for one model, bounded to ``max_bytes``."""

    def __init__(self, folder: Path, model: str, max_bytes: int) -> None:
        self.folder = folder
        self.model = model
        self.max_bytes = max_bytes
        folder.mkdir(parents=True, exist_ok=True)

    def filename(self, key: str) -> str:
        """The file name llama.cpp writes (relative to its ``slot_save_path``: no folders, no odd characters)."""
        return f"{self.model}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.bin"

    def path(self, key: str) -> Path:
        return self.folder / self.filename(key)

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def temp_name(self, key: str) -> str:
        """Saved under this name first and renamed when complete: a kill mid-write never leaves a torn state."""
        return self.filename(key) + ".part"

    def commit(self, key: str) -> None:
        os.replace(self.folder / self.temp_name(key), self.path(key))
        self.evict()

    def touch(self, key: str) -> None:
        try:
            os.utime(self.path(key))
        except OSError:
            pass

    def drop(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def evict(self, now: float | None = None) -> list[str]:
        """Keep the folder within its bound: other models' and month-old files first, then least recently used."""
        now = time.time() if now is None else now
        entries = []
        for entry in self.folder.iterdir():
            if not entry.is_file() or not (entry.name.endswith(".bin") or entry.name.endswith(".part")):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            entries.append((entry, st.st_size, st.st_mtime))
        removed: list[str] = []

        def remove(entry: Path) -> None:
            entry.unlink(missing_ok=True)
            removed.append(entry.name)

        kept = []
        for entry, size, mtime in entries:
            stale = now - mtime > STALE_DAYS * 86400
            other_model = not entry.name.startswith(self.model + "-")
            torn = entry.name.endswith(".part") and now - mtime > 60
            if stale or torn or (other_model and entry.name.endswith(".bin")):
                remove(entry)
            else:
                kept.append((entry, size, mtime))
        total = sum(size for _, size, _ in kept)
        for entry, size, _ in sorted(kept, key=lambda e: e[2]):  # oldest use first
            if total <= self.max_bytes:
                break
            remove(entry)
            total -= size
        if removed:
            log.debug("llamacpp: dropped %d saved slot states to stay within %d MiB", len(removed), self.max_bytes >> 20)
        return removed


@dataclass
class SlotPicker:
    """Which llama.cpp slot a request uses, and what that slot holds (pure).

    A request for a key goes back to the slot that already holds it; else to
    the idle slot used longest ago, which first loads the key's saved state, or
    the stable prefix's when the key has none.
    """

    slots: int
    owner: dict[int, str] = field(default_factory=dict)  # what each slot's KV cache holds, when known
    busy: set[int] = field(default_factory=set)
    used: dict[int, int] = field(default_factory=dict)  # slot -> tick of its last use
    tick: int = 0

    def acquire(self, key: str, saved: Callable[[str], bool], fallback: str = "") -> tuple[int, str | None] | None:
        """(slot, key whose saved state the slot must load first, if any) for a request keyed ``key``.

        ``saved(k)`` says whether a state for ``k`` is on disk; ``fallback`` is the
        stable prompt prefix's key, the best start for a conversation never saved.
        None when every slot is busy (the request then goes wherever llama.cpp puts it).
        """
        idle = [s for s in range(self.slots) if s not in self.busy]
        if not idle:
            return None
        self.tick += 1
        restore: str | None = None
        slot = next((s for s in idle if key and self.owner.get(s) == key), None)
        if slot is None and key and saved(key):
            slot, restore = self._oldest(idle), key
        if slot is None and fallback:
            slot = next((s for s in idle if self.owner.get(s) == fallback), None)
            if slot is None and saved(fallback):
                slot, restore = self._oldest(idle), fallback
        if slot is None:
            slot = self._oldest(idle)
        self.busy.add(slot)
        self.used[slot] = self.tick
        if key:
            self.owner[slot] = key
        else:
            self.owner.pop(slot, None)
        return slot, restore

    def holding_busy(self, key: str) -> bool:
        """True while the slot whose cache holds ``key`` is in use (it will be free again soon)."""
        return any(self.owner.get(s) == key for s in self.busy)

    def _oldest(self, idle: list[int]) -> int:
        return min(idle, key=lambda s: self.used.get(s, -1))

    def release(self, slot: int, *, holds: str | None = None) -> None:
        """The request on ``slot`` ended; ``holds`` is what the slot's cache holds now (None: unknown)."""
        self.busy.discard(slot)
        if holds is None:
            self.owner.pop(slot, None)
        else:
            self.owner[slot] = holds
