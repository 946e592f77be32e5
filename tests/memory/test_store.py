import sqlite3

import numpy as np
import pytest

from companion.memory.store import SELF, MemoryStore, normalise_subject

pytestmark = pytest.mark.slow


@pytest.fixture
async def store(tmp_path):
    s = MemoryStore(tmp_path / "memory.sqlite3")
    await s.open()
    yield s
    await s.close()


async def add(store, embedder, person, text, **kw):
    vec = (await embedder.embed([text]))[0]
    return await store.add(person, text, vec, **kw)


async def test_recall_finds_the_memory_about_the_topic(store, embedder):
    """The memory closest in meaning to the question comes first."""
    for text in ["Alice has a dog called Biscuit.", "Alice works as a nurse.", "Alice loves jazz music."]:
        await add(store, embedder, "alice", text)
    query = (await embedder.embed(["What is the name of my pet?"]))[0]
    best = await store.recall(["alice"], query, k=1)
    assert best[0].memory.content == "Alice has a dog called Biscuit."


async def test_memories_are_per_person(store, embedder):
    """Recall for one person never returns another person's memories."""
    await add(store, embedder, "alice", "Alice likes tea.")
    await add(store, embedder, "bob", "Bob likes coffee.")
    query = (await embedder.embed(["drinks"]))[0]
    assert [r.memory.content for r in await store.recall(["bob"], query)] == ["Bob likes coffee."]


async def test_newer_fact_supersedes_the_older_one(store, embedder):
    """A changed favourite colour replaces the old one in recall."""
    old = await add(store, embedder, "alice", "Alice's favourite colour is blue.", subject="favourite colour")
    await add(store, embedder, "alice", "Alice's favorite color is now green.", subject="Favorite Color")
    query = (await embedder.embed(["What colour does Alice like?"]))[0]
    recalled = [r.memory.content for r in await store.recall(["alice"], query)]
    assert recalled == ["Alice's favorite color is now green."]
    (old_row,) = await store.get([old])
    assert old_row.superseded_by is not None
    assert normalise_subject("the favourite colour") == normalise_subject("Favorite Color")


async def test_forget_removes_rows_for_good(store, embedder, tmp_path):
    """Forgotten memories are gone from the table and from the file's bytes."""
    secret = "Alice's bank PIN is 4711 zebra"
    mid = await add(store, embedder, "alice", secret)
    await add(store, embedder, "alice", "Alice likes hiking.")
    assert await store.forget([mid]) == 1
    assert [m.content for m in await store.list("alice")] == ["Alice likes hiking."]
    assert await store.forget_person("alice") == 1
    await store.close()
    raw = (tmp_path / "memory.sqlite3").read_bytes()
    assert b"4711 zebra" not in raw and b"hiking" not in raw
    await store.open()


async def test_linked_identities_share_memories(store, embedder):
    """Linking a Discord id to the local voice user makes memories follow the person."""
    discord = await store.person_for("discord:42", platform="discord", display_name="Ally")
    await add(store, embedder, discord, "Ally plays the cello.")
    local = await store.person_for("local")
    person = await store.link("local", "discord:42")
    assert person == local
    assert sorted(await store.identities(person)) == ["discord:42", "local"]
    query = (await embedder.embed(["instrument"]))[0]
    assert (await store.recall([await store.person_for("discord:42")], query))[0].memory.content == "Ally plays the cello."


async def test_importance_decays_and_faded_memories_are_pruned(tmp_path):
    """Unrecalled memories lose importance over time and are pruned; recalled ones are refreshed."""
    now = [1_000_000.0]
    store = MemoryStore(tmp_path / "m.sqlite3", clock=lambda: now[0])
    await store.open()
    v = np.ones(8, dtype=np.float32) / np.sqrt(8)
    trivia = await store.add("p", "trivia", v, importance=0.2)
    key = await store.add("p", "life event", v, importance=1.0)
    now[0] += 200 * 86400  # 200 days later
    (m,) = await store.get([trivia])
    assert store.effective_importance(m) < 0.01
    assert await store.prune(threshold=0.05) == 2  # both faded: neither was recalled
    key = await store.add("p", "life event", v, importance=1.0)
    now[0] += 20 * 86400
    await store.recall(["p"], v)  # recalled: refreshed
    now[0] += 100 * 86400
    (m,) = await store.get([key])
    assert store.effective_importance(m) > 0.09
    await store.close()


async def test_self_memories_are_separate(store, embedder):
    """The character's own experiences live under the SELF person."""
    await add(store, embedder, SELF, "I won a tic-tac-toe game yesterday.", kind="self")
    query = (await embedder.embed(["games"]))[0]
    assert (await store.recall([SELF], query))[0].memory.kind == "self"
    assert await store.recall(["someone"], query) == []


async def test_database_passes_integrity_check(store, embedder, tmp_path):
    """The memory database is a healthy SQLite file in WAL mode."""
    await add(store, embedder, "a", "x")
    with sqlite3.connect(tmp_path / "memory.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_large_stores_recall_through_the_index(tmp_path, monkeypatch):
    """Past the IVF threshold, recall still finds the right memory, sees new ones and forgets deleted ones."""
    import companion.memory.store as store_module

    monkeypatch.setattr(store_module, "IVF_MIN_MEMORIES", 500)
    rng = np.random.default_rng(0)
    topics = rng.standard_normal((20, 16)).astype(np.float32)
    vectors = topics[rng.integers(0, 20, 2000)] + 0.3 * rng.standard_normal((2000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    s = MemoryStore(tmp_path / "big.sqlite3")
    await s.open()
    await s.add_many([("p", f"memory {i}", vectors[i], 0.5) for i in range(2000)])
    best = await s.recall(["p"], vectors[123], k=1)
    assert best[0].memory.content == "memory 123"
    assert isinstance(s._cache.get("p"), store_module.IVFIndex)
    fresh = -vectors[5]
    new_id = await s.add("p", "a brand new memory", fresh)
    assert (await s.recall(["p"], fresh, k=1))[0].memory.id == new_id
    await s.forget([new_id])
    assert all(r.memory.id != new_id for r in await s.recall(["p"], fresh, k=8))
    await s.close()


async def test_vectors_in_ram_stay_bounded_across_many_people_and_come_back(tmp_path):
    """Thousands of people recalled once keep at most the bound in RAM; someone recalled again finds the same memory."""
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((600, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    s = MemoryStore(tmp_path / "many.sqlite3", max_cached_vectors=100)
    await s.open()
    await s.add_many([(f"viewer{i}", f"viewer {i} likes colour {i}", vectors[i], 0.5) for i in range(600)])
    for i in range(600):
        assert (await s.recall([f"viewer{i}"], vectors[i], k=1))[0].memory.content == f"viewer {i} likes colour {i}"
        assert s._cache.vectors() <= 100
    assert len(s._cache) == 100
    first = await s.recall(["viewer0"], vectors[0], k=1)  # long gone from RAM: read from the database again
    assert first[0].memory.content == "viewer 0 likes colour 0" and "viewer0" in s._cache
    await s.close()
