"""Embedders shared between a group's characters."""

import asyncio

import numpy as np

from companion.memory.embed import RECENT_TEXTS, Borrowed, Embedder, SentenceTransformerEmbedder, normalise


async def test_a_borrowed_embedder_is_shared_and_left_open():
    """A co-host embeds with the host's model (one copy in RAM); closing her memory leaves the host's working."""
    owner = SentenceTransformerEmbedder()
    await owner.start()
    try:
        borrowed = Borrowed(owner)
        await borrowed.start()
        assert borrowed.dim == owner.dim == 384
        same = (await borrowed.embed(["tea with Anna"])) @ (await owner.embed(["tea with Anna"])).T
        await borrowed.close()
        assert float(same[0, 0]) > 0.999
        assert (await owner.embed(["still open after she closed"])).shape == (1, 384)
    finally:
        await owner.close()


async def test_a_text_pushed_out_of_the_recent_ones_while_another_is_embedded_still_comes_back():
    """Two embeddings at once, one pushing out a text the other had found among the recent ones: both get every vector."""
    gate = asyncio.Event()

    class Gated(Embedder):
        dim = 4

        async def _embed(self, texts: list[str]) -> np.ndarray:
            if "new words" in texts:
                await gate.wait()  # its model is slow: the other call runs to the end meanwhile
            return np.array([[len(t), 1.0, 0.0, 0.0] for t in texts], dtype=np.float32)

    embedder = Gated()
    await embedder.embed(["kept"])

    async def others() -> np.ndarray:
        try:
            return await embedder.embed([f"other {i}" for i in range(RECENT_TEXTS + 1)])  # pushes "kept" out
        finally:
            gate.set()

    first, second = await asyncio.gather(embedder.embed(["kept", "new words"]), others())
    assert first.shape == (2, 4) and second.shape == (RECENT_TEXTS + 1, 4)
    assert np.allclose(first, normalise(np.array([[4, 1, 0, 0], [9, 1, 0, 0]], dtype=np.float32)))  # each its own


async def test_a_forget_through_a_borrowing_character_clears_the_owners_recent_texts():
    """In a group, a person forgotten through one character leaves none of their words in the shared embedder."""

    class Plain(Embedder):
        dim = 2

        async def _embed(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts), 2), dtype=np.float32)

    owner = Plain()
    borrowed = Borrowed(owner)
    await borrowed.embed(["my secret words"])
    borrowed.clear_recent()
    assert "my secret words" not in (owner._recent or {})
    assert borrowed._recent is None  # kept once, by the owner
