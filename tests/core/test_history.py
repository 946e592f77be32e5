import sqlite3

from companion.core.history import HistoryStore


async def test_history_survives_a_restart(tmp_path):
    """Messages written before close() are there after reopening the file."""
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(path)
    await store.open()
    await store.add("c1", "user", "my cat is called Miso", speaker_id="alice", speaker_name="Alice")
    await store.add("c1", "assistant", "Miso is a cute name!", speaker_id="companion")
    await store.close()

    again = HistoryStore(path)
    await again.open()
    recent = await again.recent("c1", 10)
    await again.close()
    assert [(m.role, m.content, m.speaker_id) for m in recent] == [
        ("user", "my cat is called Miso", "alice"),
        ("assistant", "Miso is a cute name!", "companion"),
    ]


async def test_recent_is_per_conversation_oldest_first_and_limited(tmp_path):
    """recent() returns only that conversation's last N messages in order."""
    store = HistoryStore(tmp_path / "h.sqlite3")
    await store.open()
    for i in range(5):
        await store.add("a", "user", f"a{i}", speaker_id="u")
        await store.add("b", "user", f"b{i}", speaker_id="v")
    assert [m.content for m in await store.recent("a", 3)] == ["a2", "a3", "a4"]
    assert await store.count("b") == 5
    assert [m.content for m in await store.by_speaker("v", 2)] == ["b3", "b4"]
    await store.close()


async def test_database_uses_wal(tmp_path):
    """The store runs SQLite in WAL mode so readers never block a turn's writes."""
    path = tmp_path / "h.sqlite3"
    store = HistoryStore(path)
    await store.open()
    await store.add("a", "user", "x", speaker_id="u")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await store.close()
