"""Embedders shared between a group's characters."""

from companion.memory.embed import Borrowed, SentenceTransformerEmbedder


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
