"""One SQLite connection on one dedicated thread, awaited from the event loop.

sqlite3 calls block, and the loop must never wait on the disk; a single
thread also gives each database a single writer, which is what SQLite wants.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class SqliteThread:
    """Base for stores: ``open()`` runs ``_setup`` on the thread, ``_run`` executes work there."""

    schema_version = 1
    thread_name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.thread_name)
        await self._run(self._open_sync)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            from companion.config.datadir import DataDirError

            raise DataDirError(
                f"cannot open {self.path}: {exc}.\n  hint: check that the data folder is writable and has free space "
                "(or choose another with --data-dir)"
            ) from None
        try:
            os.chmod(self.path, 0o600)  # history and memories are the user's alone
        except OSError:
            pass
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > self.schema_version:
            conn.close()
            raise RuntimeError(
                f"database {self.path} was written by a newer companion (schema {version}); upgrade companion"
            )
        self._conn = conn
        self._setup(conn)
        conn.execute(f"PRAGMA user_version={self.schema_version}")

    def _setup(self, conn: sqlite3.Connection) -> None:
        """Create tables; runs on the database thread."""

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

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        return self._conn

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError(f"{type(self).__name__} is not open; call open() first")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
