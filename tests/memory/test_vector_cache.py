import numpy as np

from companion.memory.vector_cache import VectorCache


def entry(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n), np.zeros((n, 4), dtype=np.float32)


def test_the_least_recently_recalled_person_goes_first():
    """Past the bound the person recalled longest ago is dropped, not the one just recalled."""
    cache = VectorCache(max_vectors=10)
    cache.put("ann", entry(4))
    cache.put("ben", entry(4))
    assert cache.get("ann") is not None  # ann recalled again: ben is now the oldest
    cache.put("cat", entry(4))
    assert "ben" not in cache and "ann" in cache and "cat" in cache
    assert cache.vectors() == 8


def test_one_person_bigger_than_the_bound_is_still_kept():
    """Someone with more memories than the bound stays in RAM while they are the one being recalled."""
    cache = VectorCache(max_vectors=10)
    cache.put("ann", entry(3))
    cache.put("huge", entry(50))
    assert "huge" in cache and "ann" not in cache and len(cache) == 1
