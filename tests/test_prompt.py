"""Prompt building rules that are pure logic."""

from companion.prompt import history_window


def test_history_window_start_moves_in_steps():
    """The prompt's history starts at the same message for several turns, so prompt caches keep working."""
    assert [history_window(n, 20) for n in (0, 5, 20)] == [0, 5, 20]
    starts = [n - history_window(n, 20) for n in range(21, 60)]
    assert all(10 <= history_window(n, 20) <= 20 for n in range(21, 60))
    assert len(set(starts)) <= 4  # 39 turns, the start moved only every 10 messages
    assert history_window(50, 0) == 0
