import numpy as np

from companion.memory.ivf import IVFIndex


def clustered(n: int, dim: int = 32, topics: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((topics, dim)).astype(np.float32)
    m = centers[rng.integers(0, topics, n)] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_ivf_finds_most_exact_neighbours():
    """On topic-clustered vectors the index returns most of the exact top 8."""
    m = clustered(20_000)
    index = IVFIndex(np.arange(len(m)), m)
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(30):
        q = m[rng.integers(len(m))]
        ids, sims = index.search(q, 64)
        top = set(ids[np.argsort(-sims)[:8]].tolist())
        exact = set(np.argsort(-(m @ q))[:8].tolist())
        hits += len(top & exact)
    assert hits / (30 * 8) > 0.8


def test_added_and_removed_vectors_are_honoured():
    """A vector added after the build is found; removed ids never come back."""
    m = clustered(5_000)
    index = IVFIndex(np.arange(len(m)), m)
    new = m[0] * 1.0
    index.add(99_999, new)
    ids, _ = index.search(new, 10)
    assert 99_999 in ids.tolist()
    index.remove([0, 99_999])
    ids, _ = index.search(new, 10)
    assert 0 not in ids.tolist() and 99_999 not in ids.tolist()
