import sys

import pytest

from companion.runtime.allocations import limit_malloc_arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas are a Linux matter")
def test_malloc_arenas_are_limited_unless_the_user_chose(monkeypatch):
    """On glibc Linux the companion caps malloc arenas; a MALLOC_ARENA_MAX the user set is left alone."""
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas(4) is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas(2) is False


async def test_free_heap_pages_go_back_to_the_system_and_the_trimmer_stops_at_once():
    """On glibc the trim runs (True); the periodic trimmer ends as soon as the companion stops."""
    import asyncio
    import platform
    import time

    from companion.runtime.allocations import trim_malloc, trim_malloc_periodically

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert trim_malloc() is True
    stop = asyncio.Event()
    task = asyncio.create_task(trim_malloc_periodically(stop, every=3600))
    await asyncio.sleep(0)  # waiting for its first trim
    began = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 1)
    assert time.monotonic() - began < 0.5
