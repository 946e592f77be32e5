"""A process killed with SIGKILL mid-write loses no confirmed turn and leaves a healthy database."""

import asyncio
import os
import signal
import sqlite3
import sys
import textwrap

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from companion.core.history import HistoryStore

    async def main():
        store = HistoryStore(Path(sys.argv[1]))
        await store.open()
        i = 0
        while True:
            await store.add("c", "user", f"turn {i}", speaker_id="u")
            print(i, flush=True)  # confirmed: the write has committed
            i += 1

    asyncio.run(main())
    """
)


async def test_sigkill_loses_no_confirmed_turn(tmp_path):
    """Every turn the writer confirmed before SIGKILL is in the database, which passes integrity_check."""
    db = tmp_path / "history.sqlite3"
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(db), stdout=asyncio.subprocess.PIPE)
    confirmed = -1
    while confirmed < 300:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        confirmed = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    rest = await proc.stdout.read()
    await proc.wait()
    for line in rest.split():
        confirmed = max(confirmed, int(line))
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in conn.execute("SELECT content FROM messages")}
    assert all(f"turn {i}" in stored for i in range(confirmed + 1))
