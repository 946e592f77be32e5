import asyncio

import pytest

from companion.memory.embed import SentenceTransformerEmbedder


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once."""
    emb = SentenceTransformerEmbedder()
    asyncio.run(emb.start())
    return emb
