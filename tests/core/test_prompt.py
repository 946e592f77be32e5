"""Prompt building rules that are pure logic."""

from companion.core.prompt import history_window


def test_history_window_start_moves_in_steps():
    """The prompt's history starts at the same message for several turns, so prompt caches keep working."""
    assert [history_window(n, 20) for n in (0, 5, 20)] == [0, 5, 20]
    starts = [n - history_window(n, 20) for n in range(21, 60)]
    assert all(10 <= history_window(n, 20) <= 20 for n in range(21, 60))
    assert len(set(starts)) <= 4  # 39 turns, the start moved only every 10 messages
    assert history_window(50, 0) == 0


def test_history_fits_its_token_budget_and_its_start_moves_in_steps():
    """Long histories are cut from the oldest side at fixed positions, so the newest stay and the start rarely moves."""
    from companion.core.prompt import HistoryItem, estimate_tokens, fit_history

    conversation = [HistoryItem("user" if i % 2 == 0 else "assistant", f"message {i} " + "word " * 20) for i in range(60)]
    starts = []
    for total in range(20, 61, 2):  # one turn after another
        window = conversation[total - 20 : total]
        kept = fit_history(window, 300, first_index=total - 20, step=4)
        assert kept and kept[-1] is window[-1]
        assert sum(estimate_tokens(i.content) + 4 for i in kept) <= 300
        starts.append(total - len(kept))
    assert all(s % 4 == 0 for s in starts)  # only ever cut at a multiple of the step
    assert len(set(starts)) <= len(starts) // 2 + 1  # the start stays put for at least two turns at a time
    assert fit_history(conversation, 0) == conversation
    huge = [HistoryItem("user", "word " * 400), HistoryItem("assistant", "ok then")]
    assert fit_history(huge, 100, first_index=3, step=10) == huge[-1:]  # never more than the budget allows
