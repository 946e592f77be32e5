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
from typing import Any

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


M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """At most ``arenas`` glibc malloc arenas for this process (Linux with glibc; elsewhere nothing happens).

    glibc gives each thread that allocates its own arena, up to 8 per core, and rarely hands their free pages back.
    The companion's threads (SQLite, the embedder, whisper, llama.cpp's HTTP side) then grow RSS for hours in
    small steps that no Python object accounts for: with 10,000 people over 20 minutes, the RSS growth in the second
    half went from about 27 to 16 MiB per hour with two arenas. Called once, before those threads start; the
    ``MALLOC_ARENA_MAX`` environment variable, when set, wins.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _libc()
    try:
        return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas))
    except AttributeError:  # musl: its own allocator, nothing to set
        return False


TRIM_EVERY_S = 300.0


def _libc() -> Any:
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def trim_malloc() -> bool:
    """Hand the free pages of every malloc arena back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    What stays after a burst of work (a reply's strings, a JSON body, SQLite's scratch space) is freed but kept
    by glibc in holes between live blocks, so RSS creeps up for hours with nothing alive behind it. Takes a few
    milliseconds; run off the event loop.
    """
    libc = _libc()
    try:
        return bool(libc is not None and libc.malloc_trim(0))
    except AttributeError:  # musl: no malloc_trim
        return False


async def trim_malloc_periodically(stop: asyncio.Event, every: float = TRIM_EVERY_S) -> None:
    """``trim_malloc`` every ``every`` seconds until ``stop`` (``companion run`` on Linux)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            await asyncio.to_thread(trim_malloc)
