"""Memory store at scale: insert throughput, recall latency (top 8) and size, for N synthetic memories.

Vectors are synthetic unit vectors of the embedder's size (384), grouped around
2,000 topics as real embeddings are, so the figures measure the store, not the
embedding model. All N memories belong to one person: the worst case. From
50k memories on, recall uses the IVF index; "accuracy" is then the share of
the exact top 8 (by similarity) that the index finds.

    .venv/bin/python bench/memory_recall.py --sizes 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from companion.memory.ivf import IVFIndex
from companion.memory.store import MemoryStore


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(n: int, dim: int, queries: int) -> None:
    rng = np.random.default_rng(0)
    topics = rng.standard_normal((2000, dim)).astype(np.float32)

    def synthetic(count: int) -> np.ndarray:
        v = topics[rng.integers(0, len(topics), count)] + 0.7 * rng.standard_normal((count, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def query() -> np.ndarray:
        q = synthetic(1)[0]
        return q

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.sqlite3"
        store = MemoryStore(path)
        await store.open()
        start = time.perf_counter()
        batch = 20_000
        for offset in range(0, n, batch):
            count = min(batch, n - offset)
            vectors = synthetic(count)
            rows = [("person", f"synthetic memory number {offset + i} about something", vectors[i], float(rng.random())) for i in range(count)]
            await store.add_many(rows)
        insert_s = time.perf_counter() - start
        load_start = time.perf_counter()
        await store.recall(["person"], query(), k=8, refresh=False)  # loads the vectors (builds the index)
        load_s = time.perf_counter() - load_start
        latencies = []
        for _ in range(queries):
            q = query()
            t = time.perf_counter()
            await store.recall(["person"], q, k=8)
            latencies.append((time.perf_counter() - t) * 1000)
        accuracy = "exact"
        index = store._cache.get("person")
        if isinstance(index, IVFIndex):
            hits = 0
            for _ in range(20):
                q = query()
                ids, sims = index.search(q, 64)
                found = set(ids[np.argsort(-sims)[:8]].tolist())
                exact = np.concatenate([index.matrix @ q, index.tail @ q]) if len(index.tail) else index.matrix @ q
                all_ids = np.concatenate([index.ids, index.tail_ids])
                hits += len(found & set(all_ids[np.argsort(-exact)[:8]].tolist()))
            accuracy = f"{hits / 160:.0%}"
        await store.close()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(
        f"N={n:>9,}: insert {n / insert_s:>9,.0f}/s   first recall (load) {load_s:6.2f} s   "
        f"recall top-8 median {statistics.median(latencies):7.2f} ms  p99 {p99:7.2f} ms   "
        f"accuracy {accuracy:>5}   disk {size:8.1f} MiB   peak RSS {rss_mib():8.1f} MiB"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    for n in args.sizes:
        await run(n, args.dim, args.queries)


if __name__ == "__main__":
    asyncio.run(main())
