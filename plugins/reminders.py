"""reminders: "remind me at 18:00 to call mum" — kept in SQLite, survives restarts, said out loud when due."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from companion.runtime.events import Announcement

_RELATIVE = re.compile(r"^\s*in\s+(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, now: datetime | None = None) -> float:
    """Epoch seconds for "in 10 minutes", "18:30" (today, or tomorrow if past) or an ISO date-time."""
    now = now or datetime.now().astimezone()
    rel = _RELATIVE.match(text)
    if rel:
        return now.timestamp() + float(rel.group(1)) * _UNITS[rel.group(2)[0].lower()]
    clock = re.match(r"^\s*(?:at\s+)?(\d{1,2})[:h](\d{2})\s*$", text, re.I)
    if clock:
        at = now.replace(hour=int(clock.group(1)), minute=int(clock.group(2)), second=0, microsecond=0)
        if at <= now:
            at += timedelta(days=1)
        return at.timestamp()
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"cannot read the time {text!r}; say e.g. 'in 10 minutes', '18:30' or '2026-12-24T18:00'") from None
    return (at if at.tzinfo else at.astimezone()).timestamp()


class ReminderStore:
    def __init__(self, path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS reminders (id INTEGER PRIMARY KEY, due REAL NOT NULL, text TEXT NOT NULL,"
            " speaker_id TEXT NOT NULL, conversation_id TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0)"
        )

    def add(self, due: float, text: str, speaker_id: str, conversation_id: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO reminders (due, text, speaker_id, conversation_id) VALUES (?, ?, ?, ?)", (due, text, speaker_id, conversation_id)
        )
        return int(cur.lastrowid or 0)

    def due(self, now: float) -> list[tuple[int, str, str, str]]:
        return self.conn.execute(
            "SELECT id, text, speaker_id, conversation_id FROM reminders WHERE done = 0 AND due <= ? ORDER BY due", (now,)
        ).fetchall()

    def next_due(self) -> float | None:
        row = self.conn.execute("SELECT MIN(due) FROM reminders WHERE done = 0").fetchone()
        return row[0] if row and row[0] is not None else None

    def mark_done(self, rid: int) -> None:
        self.conn.execute("UPDATE reminders SET done = 1 WHERE id = ?", (rid,))

    def pending(self, speaker_id: str) -> list[tuple[int, float, str]]:
        return self.conn.execute(
            "SELECT id, due, text FROM reminders WHERE done = 0 AND speaker_id = ? ORDER BY due", (speaker_id,)
        ).fetchall()


async def setup(app) -> None:
    worker = ThreadPoolExecutor(1, thread_name_prefix="reminders")

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(worker, fn, *args)

    # SQLite stays off the event loop: one worker thread uses the connection
    store = ReminderStore(app.data_dir / "reminders.sqlite3")

    def unload() -> None:
        worker.shutdown(wait=True)
        store.conn.close()

    app.on_unload(unload)
    wake = asyncio.Event()

    @app.tool(
        "set_reminder",
        "Remind the person of something later. `when`: 'in 10 minutes', '18:30' or an ISO date-time.",
        {"type": "object", "properties": {"text": {"type": "string"}, "when": {"type": "string"}}, "required": ["text", "when"]},
    )
    async def set_reminder(args, ctx):
        try:
            due = parse_when(args["when"])
        except ValueError as exc:
            return f"error: {exc}"
        await run(store.add, due, args["text"], ctx.speaker_id, ctx.conversation_id)
        wake.set()
        return f"reminder set for {datetime.fromtimestamp(due).astimezone().strftime('%a %H:%M')}: {args['text']}"

    @app.tool("list_reminders", "The person's reminders that have not fired yet.")
    async def list_reminders(args, ctx):
        rows = await run(store.pending, ctx.speaker_id)
        return "; ".join(f"{datetime.fromtimestamp(d).strftime('%a %H:%M')}: {t}" for _, d, t in rows) or "no reminders"

    async def deliver() -> None:
        while True:
            for rid, text, speaker, conversation in await run(store.due, time.time()):
                message = f"Reminder: {text}"
                await app.companion.history.add(conversation, "assistant", message, speaker_id="companion", platform="reminder")
                app.bus.publish(Announcement(conversation, message, speaker))
                await run(store.mark_done, rid)  # after it was said: a crash in between repeats it rather than losing it
            nxt = await run(store.next_due)
            wake.clear()
            timeout = 60.0 if nxt is None else max(0.05, min(60.0, nxt - time.time()))
            try:
                await asyncio.wait_for(wake.wait(), timeout)
            except TimeoutError:
                pass

    app.background(deliver, "deliver")

