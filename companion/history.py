"""Conversation history in SQLite (WAL), per conversation and per speaker.

All database work runs on one dedicated thread: sqlite3 calls block, and the
event loop must never wait on the disk. WAL lets readers (a future web page
browsing history) run while a turn writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["HistoryStore", "StoredMessage"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    speaker_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content TEXT NOT NULL,
    platform TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX IF NOT EXISTS messages_by_speaker ON messages (speaker_id, id);
"""
_VERSION = 1


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    conversation_id: str
    speaker_id: str
    speaker_name: str
    role: str
    content: str
    platform: str
    created_at: float
    interrupted: bool


class HistoryStore:
    """Async facade over one SQLite file; open() before use, close() flushes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-db")
        await self._run(self._open_sync)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _VERSION:
            conn.close()
            raise RuntimeError(
                f"history database {self.path} was written by a newer companion (schema {version}); upgrade companion"
            )
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={_VERSION}")
        self._conn = conn

    async def close(self) -> None:
        """Checkpoint the WAL into the main file and release the thread."""
        if self._executor is None:
            return
        await self._run(self._close_sync)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    async def add(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        speaker_id: str,
        speaker_name: str = "",
        platform: str = "",
        interrupted: bool = False,
        created_at: float | None = None,
    ) -> int:
        ts = time.time() if created_at is None else created_at

        def insert() -> int:
            cur = self._db().execute(
                "INSERT INTO messages (conversation_id, speaker_id, speaker_name, role, content, platform,"
                " created_at, interrupted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, speaker_id, speaker_name, role, content, platform, ts, int(interrupted)),
            )
            return int(cur.lastrowid or 0)

        return await self._run(insert)

    async def recent(self, conversation_id: str, limit: int) -> list[StoredMessage]:
        """The last ``limit`` messages of a conversation, oldest first."""
        if limit <= 0:
            return []
        rows = await self._run(
            lambda: self._db()
            .execute(
                "SELECT * FROM (SELECT * FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?)"
                " ORDER BY id",
                (conversation_id, limit),
            )
            .fetchall()
        )
        return [_row(r) for r in rows]

    async def count(self, conversation_id: str) -> int:
        return await self._run(
            lambda: self._db()
            .execute("SELECT COUNT(*) FROM messages WHERE conversation_id = ?", (conversation_id,))
            .fetchone()[0]
        )

    async def by_speaker(self, speaker_id: str, limit: int = 50) -> list[StoredMessage]:
        """What one person said, newest last, across conversations."""
        rows = await self._run(
            lambda: self._db()
            .execute(
                "SELECT * FROM (SELECT * FROM messages WHERE speaker_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                (speaker_id, limit),
            )
            .fetchall()
        )
        return [_row(r) for r in rows]

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("history store is not open")
        return self._conn

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError("history store is not open; call open() first")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


def _row(r: tuple) -> StoredMessage:
    return StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]))
