"""Where memory grows in a long run: tracemalloc snapshots diffed against one taken after warm-up.

Off unless ``COMPANION_TRACEMALLOC`` names a file (``bench/soak.py`` sets it, and ``COMPANION_TRACEMALLOC_EVERY``): tracing costs CPU and memory of its
own, so a user's companion never pays for it. Every ``every`` seconds the sites that grew most since the
warm-up snapshot (file and line, KiB and blocks) are written to that file as JSON, replacing the last report.
"""

from __future__ import annotations

import asyncio
import json
import os
import tracemalloc
from pathlib import Path

__all__ = ["ENV", "track_allocations"]

ENV = "COMPANION_TRACEMALLOC"


def _report(baseline: tracemalloc.Snapshot, top: int) -> list[dict[str, object]]:
    now = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    grown = [d for d in now.compare_to(baseline, "lineno") if d.size_diff > 0]
    return [
        {"site": f"{d.traceback[0].filename}:{d.traceback[0].lineno}", "kib": round(d.size_diff / 1024, 1), "blocks": d.count_diff}
        for d in grown[:top]
    ]


async def track_allocations(stop: asyncio.Event, *, every: float = 60.0, top: int = 15) -> None:
    """Write the top growing allocation sites to $COMPANION_TRACEMALLOC while the companion runs."""
    target = os.environ.get(ENV, "")
    if not target:
        return
    path = Path(target)
    every = float(os.environ.get(ENV + "_EVERY", every))
    tracemalloc.start(1)
    try:
        try:
            await asyncio.wait_for(stop.wait(), every)  # warm-up: models loaded, caches filled
            return
        except TimeoutError:
            pass
        baseline = tracemalloc.take_snapshot()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass
            report = await asyncio.to_thread(_report, baseline, top)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"traced_mib": round(tracemalloc.get_traced_memory()[0] / 2**20, 1), "grown": report}))
            tmp.replace(path)
    finally:
        tracemalloc.stop()
