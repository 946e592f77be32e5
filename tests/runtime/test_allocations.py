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
