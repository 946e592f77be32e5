"""An inverted-file (IVF) vector index in numpy, for people with very many memories.

Exact search scans every vector: fine up to ~100k memories (a few ms), too
slow at a million (~100 ms on 2 cores). The index clusters the vectors with a
few rounds of k-means on a sample, stores them sorted by cluster, and a query
scans only the ``nprobe`` clusters whose centroids are closest: a few percent of
the vectors. Vectors added after the build are kept in a small exact tail.
"""

from __future__ import annotations

import numpy as np

__all__ = ["IVFIndex"]


class IVFIndex:
    def __init__(self, ids: np.ndarray, matrix: np.ndarray, *, nprobe: int | None = None, seed: int = 0) -> None:
        n, dim = matrix.shape
        self.dim = dim
        k = max(16, int(np.sqrt(n)))
        self.nprobe = nprobe or max(32, k // 16)
        rng = np.random.default_rng(seed)
        sample = matrix[rng.choice(n, size=min(n, k * 30), replace=False)]
        centroids = sample[rng.choice(len(sample), size=k, replace=False)].copy()
        for _ in range(6):  # spherical k-means on the sample
            assign = np.argmax(sample @ centroids.T, axis=1)
            sums = np.zeros_like(centroids)
            np.add.at(sums, assign, sample)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            empty = norms[:, 0] == 0
            sums[~empty] /= norms[~empty]
            sums[empty] = centroids[empty]
            centroids = sums
        assign = np.empty(n, dtype=np.int64)
        for start in range(0, n, 65536):  # chunks keep the n x k similarity matrix small
            assign[start : start + 65536] = np.argmax(matrix[start : start + 65536] @ centroids.T, axis=1)
        order = np.argsort(assign, kind="stable")
        self.centroids = centroids
        self.ids = ids[order]
        self.matrix = np.ascontiguousarray(matrix[order])
        self.offsets = np.searchsorted(assign[order], np.arange(k + 1))
        self.tail_ids = np.zeros(0, dtype=np.int64)
        self.tail = np.zeros((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.ids) + len(self.tail_ids)

    def add(self, memory_id: int, vector: np.ndarray) -> None:
        self.tail_ids = np.append(self.tail_ids, memory_id)
        self.tail = np.vstack([self.tail, vector.reshape(1, -1)])

    def remove(self, memory_ids: np.ndarray | list[int]) -> None:
        """Drop ids (superseded or forgotten); clusters keep their slices, removed rows are masked."""
        gone = np.isin(self.ids, memory_ids)
        if gone.any():
            self.ids = np.where(gone, -1, self.ids)
        keep = ~np.isin(self.tail_ids, memory_ids)
        self.tail_ids, self.tail = self.tail_ids[keep], self.tail[keep]

    def search(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``count`` (ids, similarities) among the probed clusters and the tail."""
        probe = np.argpartition(-(self.centroids @ query), min(self.nprobe, len(self.centroids) - 1))[: self.nprobe]
        ids_parts, sim_parts = [self.tail_ids], [self.tail @ query if len(self.tail) else np.zeros(0, dtype=np.float32)]
        for cluster in probe:
            lo, hi = self.offsets[cluster], self.offsets[cluster + 1]
            if hi > lo:
                ids_parts.append(self.ids[lo:hi])
                sim_parts.append(self.matrix[lo:hi] @ query)
        ids = np.concatenate(ids_parts)
        sims = np.concatenate(sim_parts)
        valid = ids >= 0
        ids, sims = ids[valid], sims[valid]
        if len(ids) > count:
            top = np.argpartition(-sims, count - 1)[:count]
            ids, sims = ids[top], sims[top]
        return ids, sims
