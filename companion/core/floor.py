"""Whose turn it is in each conversation: messages of one conversation are answered in order, different
conversations run side by side, and the reply holding a conversation's floor can be found and stopped.

State per conversation lives only while a reply holds or waits for it, so a stream that brings thousands of
people over a day leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

__all__ = ["Floor"]

R = TypeVar("R")


class Floor(Generic[R]):
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}  # replies holding or waiting for each conversation's lock
        self._holder: dict[str, R] = {}  # the reply being written or spoken, per conversation

    @asynccontextmanager
    async def take(self, conversation_id: str, reply: R) -> AsyncIterator[None]:
        """Wait for ``conversation_id``'s turn, then hold it as ``reply`` until the block ends."""
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        self._waiting[conversation_id] = self._waiting.get(conversation_id, 0) + 1
        try:
            async with lock:
                self._holder[conversation_id] = reply
                try:
                    yield
                finally:
                    self.release(conversation_id, reply)
        finally:
            self._waiting[conversation_id] -= 1
            if not self._waiting[conversation_id]:
                del self._waiting[conversation_id], self._locks[conversation_id]

    def release(self, conversation_id: str, reply: R) -> None:
        """``reply`` no longer answers for its conversation (its speech ended); it may still store what was said."""
        if self._holder.get(conversation_id) is reply:
            del self._holder[conversation_id]

    def holder(self, conversation_id: str) -> R | None:
        return self._holder.get(conversation_id)

    def holders(self) -> dict[str, R]:
        return dict(self._holder)

    def conversations(self) -> int:
        """Conversations with a reply running or waiting (for tests and /health: it must not grow)."""
        return len(self._locks)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every held conversation to be released; False if one still is."""
        try:
            async with asyncio.timeout(timeout):
                for lock in list(self._locks.values()):
                    if lock.locked():
                        async with lock:
                            pass
        except TimeoutError:
            return False
        return True
