"""The memory store: people, their linked identities, and memories with embeddings, in SQLite.

Recall ranks a person's memories (plus the character's own) by similarity to
the topic, importance and recency; importance decays with time since a memory
was last recalled, so what keeps coming up stays and the rest fades and is
pruned. Vectors live on disk as float16 and, per person, in a float32 matrix in
RAM that is loaded on first recall and updated on every write.

``secure_delete`` is on: a forgotten memory is overwritten on disk, not just
unlinked, so "forget everything about me" really removes it.
"""

from __future__ import annotations

import builtins
import math
import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.memory.ivf import IVFIndex
from companion.memory.vector_cache import MAX_CACHED_VECTORS, VectorCache
from companion.runtime.dbthread import SqliteThread

__all__ = ["MemoryStore", "Memory", "Recalled", "RankWeights", "SELF"]

SELF = "__self__"  # person id for the character's own experiences
# From this many memories of one person on, recall searches an IVF index instead of
# scanning every vector (exact scans stay within a few ms below it on 2 cores).
IVF_MIN_MEMORIES = 50_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS identities (
    speaker_id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL,
    platform TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS memories (
    id INTEGER PRIMARY KEY,
    person_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    content TEXT NOT NULL,
    importance REAL NOT NULL,
    created_at REAL NOT NULL,
    last_access REAL NOT NULL,
    access_count INTEGER NOT NULL DEFAULT 0,
    superseded_by INTEGER,
    conversation_id TEXT NOT NULL DEFAULT '',
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS memories_active ON memories (person_id, superseded_by);
CREATE INDEX IF NOT EXISTS memories_subject ON memories (person_id, subject);
CREATE TABLE IF NOT EXISTS pending_work (
    id INTEGER PRIMARY KEY,
    payload TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Memory:
    id: int
    person_id: str
    kind: str  # "fact" (about a person), "episode" (their own words), "self" (the character's own), "summary"
    subject: str
    content: str
    importance: float  # 0..1 as stored
    created_at: float
    last_access: float
    access_count: int
    superseded_by: int | None
    conversation_id: str


@dataclass(frozen=True, slots=True)
class Recalled:
    memory: Memory
    score: float
    similarity: float


@dataclass(frozen=True, slots=True)
class RankWeights:
    similarity: float = 1.0
    importance: float = 0.3
    recency: float = 0.15
    half_life_days: float = 30.0  # importance halves after this long without recall


def normalise_subject(subject: str) -> str:
    """"Favourite Colour", "favorite color" and "the favourite colour" are one subject."""
    s = subject.lower().strip()
    s = re.sub(r"\b(the|a|an|my|your|his|her|their)\b", " ", s)
    s = s.replace("colour", "color").replace("favourite", "favorite")
    return re.sub(r"[^a-z0-9]+", " ", s).strip()


def _row(r: tuple) -> Memory:
    return Memory(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10])


_COLUMNS = "id, person_id, kind, subject, content, importance, created_at, last_access, access_count, superseded_by, conversation_id"


class MemoryStore(SqliteThread):
    """People, identities and memories; every method is async and runs on the database thread."""

    thread_name = "memory-db"

    def __init__(
        self, path: Path, *, weights: RankWeights | None = None, clock=time.time, max_cached_vectors: int = MAX_CACHED_VECTORS
    ) -> None:
        super().__init__(path)
        self.weights = weights or RankWeights()
        self.clock = clock
        # person id -> exact (ids, float32 matrix) or an IVF index for very many memories; built on first
        # recall, kept in step with writes, the least recently recalled people dropped past max_cached_vectors
        self._cache: VectorCache[tuple[np.ndarray, np.ndarray] | IVFIndex] = VectorCache(max_cached_vectors)

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA secure_delete=ON")
        conn.executescript(_SCHEMA)

    # -- identities -------------------------------------------------------------

    async def person_for(self, speaker_id: str, *, platform: str = "", display_name: str = "") -> str:
        """The person behind a platform identity, created on first sight."""

        def work() -> str:
            db = self._db()
            row = db.execute("SELECT person_id FROM identities WHERE speaker_id = ?", (speaker_id,)).fetchone()
            if row:
                if display_name:
                    db.execute("UPDATE identities SET display_name = ? WHERE speaker_id = ?", (display_name, speaker_id))
                return row[0]
            db.execute("INSERT OR IGNORE INTO persons (id, name, created_at) VALUES (?, ?, ?)", (speaker_id, display_name, self.clock()))
            db.execute(
                "INSERT INTO identities (speaker_id, person_id, platform, display_name) VALUES (?, ?, ?, ?)",
                (speaker_id, speaker_id, platform, display_name),
            )
            return speaker_id

        return await self._run(work)

    async def link(self, speaker_a: str, speaker_b: str) -> str:
        """Make two identities one person (B joins A's person); B's memories follow."""
        person_a = await self.person_for(speaker_a)
        person_b = await self.person_for(speaker_b)
        if person_a == person_b:
            return person_a

        def work() -> None:
            db = self._db()
            db.execute("BEGIN")
            db.execute("UPDATE identities SET person_id = ? WHERE person_id = ?", (person_a, person_b))
            db.execute("UPDATE memories SET person_id = ? WHERE person_id = ?", (person_a, person_b))
            db.execute("DELETE FROM persons WHERE id = ?", (person_b,))
            db.execute("COMMIT")

        await self._run(work)
        self._cache.pop(person_a)
        self._cache.pop(person_b)
        return person_a

    async def identities(self, person_id: str) -> list[str]:
        rows = await self._run(
            lambda: self._db().execute("SELECT speaker_id FROM identities WHERE person_id = ? ORDER BY speaker_id", (person_id,)).fetchall()
        )
        return [r[0] for r in rows]

    # -- writing ----------------------------------------------------------------

    async def add(
        self,
        person_id: str,
        content: str,
        embedding: np.ndarray,
        *,
        kind: str = "fact",
        subject: str = "",
        importance: float = 0.5,
        conversation_id: str = "",
        supersedes: Sequence[int] = (),
    ) -> int:
        """Store a memory; a newer fact on the same subject supersedes the older one (and so do ``supersedes``)."""
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        subject_key = normalise_subject(subject)
        now = self.clock()
        importance = min(1.0, max(0.0, importance))

        def work() -> tuple[int, list[int]]:
            db = self._db()
            db.execute("BEGIN")
            cur = db.execute(
                "INSERT INTO memories (person_id, kind, subject, content, importance, created_at, last_access,"
                " conversation_id, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (person_id, kind, subject_key, content, importance, now, now, conversation_id, vector.astype(np.float16).tobytes()),
            )
            new_id = int(cur.lastrowid or 0)
            old: list[int] = [int(i) for i in supersedes]
            if subject_key:
                old += [
                    r[0]
                    for r in db.execute(
                        "SELECT id FROM memories WHERE person_id = ? AND subject = ? AND superseded_by IS NULL AND id != ?",
                        (person_id, subject_key, new_id),
                    )
                ]
            if old:
                db.execute(
                    f"UPDATE memories SET superseded_by = ? WHERE id IN ({','.join('?' * len(old))})", (new_id, *old)
                )
            db.execute("COMMIT")
            return new_id, old

        new_id, superseded = await self._run(work)
        self._cache_add(person_id, new_id, vector, superseded)
        return new_id

    async def add_many(self, rows: Sequence[tuple[str, str, np.ndarray, float]], *, kind: str = "fact") -> int:
        """Bulk insert (person, content, embedding, importance) without supersede checks (imports, benchmarks)."""
        now = self.clock()

        def work() -> int:
            db = self._db()
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO memories (person_id, kind, subject, content, importance, created_at, last_access, embedding)"
                " VALUES (?, ?, '', ?, ?, ?, ?, ?)",
                [(p, kind, c, i, now, now, np.asarray(e, dtype=np.float16).tobytes()) for p, c, e, i in rows],
            )
            db.execute("COMMIT")
            return len(rows)

        count = await self._run(work)
        for person in {r[0] for r in rows}:
            self._cache.pop(person)
        return count

    def _cache_add(self, person_id: str, memory_id: int, vector: np.ndarray, superseded: list[int]) -> None:
        cached = self._cache.get(person_id)
        if cached is None:
            return
        stored = vector.astype(np.float16).astype(np.float32)
        if isinstance(cached, IVFIndex):
            if superseded:
                cached.remove(superseded)
            cached.add(memory_id, stored)
            self._cache.trim()
            return
        ids, matrix = cached
        if superseded:
            keep = ~np.isin(ids, superseded)
            ids, matrix = ids[keep], matrix[keep]
        self._cache.put(person_id, (np.append(ids, memory_id), np.vstack([matrix, stored])))

    # -- recall -----------------------------------------------------------------

    async def recall(
        self, person_ids: Sequence[str], query: np.ndarray, *, k: int = 8, refresh: bool = True
    ) -> list[Recalled]:
        """The ``k`` best memories of these people for ``query``, best first; recalled ones are refreshed."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        short = max(k * 8, 64)
        candidates_ids, sims = [], []
        for person in person_ids:
            vectors = await self._vectors(person)
            if isinstance(vectors, IVFIndex):
                found_ids, found_sims = vectors.search(query, short)
                candidates_ids.append(found_ids)
                sims.append(found_sims)
            elif len(vectors[0]):
                candidates_ids.append(vectors[0])
                sims.append(vectors[1] @ query)
        if not candidates_ids:
            return []
        ids = np.concatenate(candidates_ids)
        sim = np.concatenate(sims)
        # Pre-select by similarity (cheap), then rank the short list with importance and recency.
        short = min(len(ids), short)
        top = np.argpartition(-sim, short - 1)[:short] if short < len(ids) else np.arange(len(ids))
        memories = {m.id: m for m in await self.get([int(i) for i in ids[top]])}
        now = self.clock()
        ranked = []
        for index in top:
            memory = memories.get(int(ids[index]))
            if memory is None:
                continue
            ranked.append(Recalled(memory, self._score(memory, float(sim[index]), now), float(sim[index])))
        ranked.sort(key=lambda r: r.score, reverse=True)
        best = ranked[:k]
        if refresh and best:
            await self.touch([r.memory.id for r in best], now)
        return best

    async def touch(self, ids: Sequence[int], now: float | None = None) -> None:
        """Mark memories as used now: recalled or said again, they fade more slowly."""
        if not ids:
            return
        when = self.clock() if now is None else now
        await self._run(
            lambda: self._db().execute(
                f"UPDATE memories SET last_access = ?, access_count = access_count + 1 WHERE id IN ({','.join('?' * len(ids))})",
                (when, *ids),
            )
        )

    def effective_importance(self, memory: Memory, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        idle_days = max(0.0, now - memory.last_access) / 86400
        return memory.importance * 0.5 ** (idle_days / self.weights.half_life_days)

    def _score(self, memory: Memory, similarity: float, now: float) -> float:
        w = self.weights
        age_days = max(0.0, now - memory.created_at) / 86400
        recency = math.exp(-age_days / max(w.half_life_days, 1e-6))
        return w.similarity * similarity + w.importance * self.effective_importance(memory, now) + w.recency * recency

    async def _vectors(self, person_id: str) -> tuple[np.ndarray, np.ndarray] | IVFIndex:
        cached = self._cache.get(person_id)
        if cached is not None:
            return cached

        def load() -> tuple[np.ndarray, np.ndarray]:
            rows = self._db().execute(
                "SELECT id, embedding FROM memories WHERE person_id = ? AND superseded_by IS NULL ORDER BY id", (person_id,)
            ).fetchall()
            if not rows:
                return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float16).reshape(len(rows), -1).astype(np.float32)
            return ids, matrix

        result = await self._run(load)
        if len(result[0]) >= IVF_MIN_MEMORIES:
            import asyncio

            ids, matrix = result
            index = await asyncio.to_thread(IVFIndex, ids, matrix)
            self._cache.put(person_id, index)
            return index
        if len(result[0]):
            self._cache.put(person_id, result)
        return result

    # -- reading, forgetting -------------------------------------------------------

    async def get(self, ids: Sequence[int]) -> list[Memory]:
        if not ids:
            return []
        ids = list(ids)

        def work() -> list[Memory]:
            out: list[Memory] = []
            for start in range(0, len(ids), 900):  # SQLite's parameter limit
                chunk = ids[start : start + 900]
                out.extend(
                    _row(r)
                    for r in self._db().execute(
                        f"SELECT {_COLUMNS} FROM memories WHERE id IN ({','.join('?' * len(chunk))})", chunk
                    )
                )
            return out

        return await self._run(work)

    async def list(self, person_id: str | None = None, *, include_superseded: bool = False, limit: int = 1000) -> list[Memory]:
        where, params = [], []
        if person_id is not None:
            where.append("person_id = ?")
            params.append(person_id)
        if not include_superseded:
            where.append("superseded_by IS NULL")
        sql = f"SELECT {_COLUMNS} FROM memories" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC LIMIT ?"
        rows = await self._run(lambda: self._db().execute(sql, (*params, limit)).fetchall())
        return [_row(r) for r in rows]

    async def count(self) -> int:
        return await self._run(lambda: self._db().execute("SELECT COUNT(*) FROM memories").fetchone()[0])

    async def forget(self, ids: Sequence[int]) -> int:
        """Delete these memories (overwritten on disk)."""
        if not ids:
            return 0
        ids = list(ids)

        def work() -> tuple[int, list[str]]:
            db = self._db()
            marks = ",".join("?" * len(ids))
            persons = [r[0] for r in db.execute(f"SELECT DISTINCT person_id FROM memories WHERE id IN ({marks})", ids)]
            cur = db.execute(f"DELETE FROM memories WHERE id IN ({marks})", ids)
            return cur.rowcount, persons

        count, persons = await self._run(work)
        for person in persons:
            cached = self._cache.get(person)
            if isinstance(cached, IVFIndex):
                cached.remove(ids)  # rebuilding a large index would take seconds
            else:
                self._cache.pop(person)
        return count

    # -- background work that outlives a process ------------------------------------

    async def save_pending(self, payloads: Sequence[str]) -> None:
        """Replace the saved queue of background work (extraction, summaries) with ``payloads``."""

        def work() -> None:
            db = self._db()
            db.execute("BEGIN")
            db.execute("DELETE FROM pending_work")
            db.executemany("INSERT INTO pending_work (payload) VALUES (?)", [(p,) for p in payloads])
            db.execute("COMMIT")

        await self._run(work)

    async def take_pending(self) -> builtins.list[str]:
        """The saved queue, oldest first; it is cleared (the caller queues it again)."""

        def work() -> builtins.list[str]:
            db = self._db()
            rows = [r[0] for r in db.execute("SELECT payload FROM pending_work ORDER BY id")]
            db.execute("DELETE FROM pending_work")
            return rows

        return await self._run(work)

    async def forget_person(self, person_id: str) -> int:
        """Everything about one person: memories, including superseded ones."""

        def work() -> int:
            cur = self._db().execute("DELETE FROM memories WHERE person_id = ?", (person_id,))
            return cur.rowcount

        count = await self._run(work)
        self._cache.pop(person_id)
        return count

    async def latest(self, person_id: str, *, kind: str, conversation_id: str) -> Memory | None:
        """The newest current memory of one kind in one conversation (e.g. its rolling summary)."""
        rows = await self._run(
            lambda: self._db()
            .execute(
                f"SELECT {_COLUMNS} FROM memories WHERE person_id = ? AND kind = ? AND conversation_id = ?"
                " AND superseded_by IS NULL ORDER BY id DESC LIMIT 1",
                (person_id, kind, conversation_id),
            )
            .fetchall()
        )
        return _row(rows[0]) if rows else None

    async def recent(self, person_id: str, *, conversation_id: str, since: float) -> builtins.list[Memory]:
        rows = await self._run(
            lambda: self._db()
            .execute(
                f"SELECT {_COLUMNS} FROM memories WHERE person_id = ? AND conversation_id = ? AND created_at >= ?",
                (person_id, conversation_id, since),
            )
            .fetchall()
        )
        return [_row(r) for r in rows]

    async def prune(self, *, threshold: float = 0.05, min_age_days: float = 7.0) -> int:
        """Delete memories whose decayed importance fell below ``threshold`` (and superseded ones past min age)."""
        now = self.clock()
        candidates = await self._run(
            lambda: self._db()
            .execute(f"SELECT {_COLUMNS} FROM memories WHERE created_at < ?", (now - min_age_days * 86400,))
            .fetchall()
        )
        doomed = [
            m.id
            for m in map(_row, candidates)
            if m.superseded_by is not None or self.effective_importance(m, now) < threshold
        ]
        return await self.forget(doomed)
