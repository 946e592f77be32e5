"""The memory vectors kept in RAM for recall, bounded across people (pure bookkeeping, no I/O).

Each memory's embedding (384 dimensions) takes 1.5 KiB in RAM as float32: 146 MiB per 100,000 memories. A
stream or a Discord server brings thousands of people over a day, most of whom never come back, so only the
people recalled most recently stay in RAM, up to ``MAX_CACHED_VECTORS`` memories together (29 MiB); someone who
comes back later has theirs read from the database again (one indexed query: milliseconds for a few hundred).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["VectorCache", "MAX_CACHED_VECTORS"]

MAX_CACHED_VECTORS = 20_000  # about 29 MiB of float32 384-dimension vectors: hundreds of active people

V = TypeVar("V")


def _count(entry: object) -> int:
    if isinstance(entry, tuple):
        return len(entry[0])
    return len(entry)  # type: ignore[arg-type]


class VectorCache(Generic[V]):
    """Person id -> their vectors (an (ids, matrix) pair or an IVF index), least recently used out first.

    The person used last always stays, even past the bound: one person with more memories than the bound is
    served from RAM rather than read again for every recall.
    """

    def __init__(self, max_vectors: int = MAX_CACHED_VECTORS) -> None:
        self.max_vectors = max_vectors
        self._entries: OrderedDict[str, V] = OrderedDict()

    def get(self, person_id: str) -> V | None:
        entry = self._entries.get(person_id)
        if entry is not None:
            self._entries.move_to_end(person_id)
        return entry

    def put(self, person_id: str, entry: V) -> None:
        self._entries[person_id] = entry
        self._entries.move_to_end(person_id)
        self.trim()

    def pop(self, person_id: str) -> None:
        self._entries.pop(person_id, None)

    def trim(self) -> None:
        """Drop the least recently used people until the vectors kept fit the bound (an index grown by writes too)."""
        total = self.vectors()
        while total > self.max_vectors and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            total -= _count(dropped)

    def vectors(self) -> int:
        return sum(_count(entry) for entry in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, person_id: object) -> bool:
        return person_id in self._entries
