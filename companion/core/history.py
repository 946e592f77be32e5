"""Conversation history in SQLite (WAL), per conversation and per speaker.

All database work runs on one dedicated thread (``SqliteThread``). WAL lets readers (a future web page
browsing history) run while a turn writes.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from companion.runtime.dbthread import SqliteThread

__all__ = ["HistoryStore", "StoredMessage"]

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


class HistoryStore(SqliteThread):
    """Async facade over one SQLite file; open() before use, close() flushes."""

    schema_version = _VERSION
    thread_name = "history-db"

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.executescript(_SCHEMA)

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

    async def retract(self, conversation_id: str, speaker_id: str, content: str) -> bool:
        """Delete the newest message ``speaker_id`` sent with this content (voice: they had not finished speaking)."""

        def work() -> bool:
            row = self._db().execute(
                "SELECT id FROM messages WHERE conversation_id = ? AND speaker_id = ? AND role = 'user' AND content = ?"
                " ORDER BY id DESC LIMIT 1",
                (conversation_id, speaker_id, content),
            ).fetchone()
            if row is None:
                return False
            self._db().execute("DELETE FROM messages WHERE id = ?", (row[0],))
            return True

        return await self._run(work)

    async def forget_speaker(self, speaker_id: str) -> int:
        """Delete everything one speaker said (a "forget everything about me" request)."""

        def work() -> int:
            db = self._db()
            db.execute("PRAGMA secure_delete=ON")
            return db.execute("DELETE FROM messages WHERE speaker_id = ?", (speaker_id,)).rowcount

        return await self._run(work)

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


def _row(r: tuple) -> StoredMessage:
    return StoredMessage(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]))
