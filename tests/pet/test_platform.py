"""What each desktop lets her window do, and the one notice a user gets when it falls back."""

import pytest

from companion.pet.platform import Desktop, NoDisplay, decide


def test_x11_with_a_compositor_gets_the_whole_pet():
    """Transparent, frameless, on top, click-through, the pointer and the hotkey: nothing to say."""
    plan = decide(Desktop(os="linux", x11=True))
    assert (plan.gui, plan.transparent, plan.frameless, plan.on_top, plan.click_through, plan.follow_mouse) == ("qt", True, True, True, True, True)
    assert plan.notice() is None


def test_x11_without_a_compositor_falls_back_to_a_normal_window_and_says_so():
    """No compositing manager: a see-through window would show black, so she stands in a normal one."""
    plan = decide(Desktop(os="linux", x11=True, compositor=False))
    assert not plan.transparent and not plan.frameless and not plan.click_through
    assert "compositing manager" in plan.notice()


def test_wayland_with_xwayland_runs_the_window_through_xwayland():
    """Wayland's own protocol keeps no window on top and lets no app place itself: XWayland does both."""
    plan = decide(Desktop(os="linux", wayland=True, x11=True))
    assert plan.qt_platform == "xcb" and plan.on_top and plan.remember_position
    assert plan.notice() is None


def test_wayland_alone_falls_back_and_says_what_is_lost():
    """Without XWayland: a normal window where the compositor puts it, no hotkey, and one line saying so."""
    plan = decide(Desktop(os="linux", wayland=True, x11=False))
    assert plan.qt_platform == "wayland"
    assert not plan.on_top and not plan.remember_position and not plan.hotkey
    assert "Wayland" in plan.notice()


def test_without_qt_the_window_opens_with_what_pywebview_can_do():
    """pywebview's own toolkit still shows her; click-through and the pointer need Qt, and the notice says how."""
    plan = decide(Desktop(os="win32", qt=False))
    assert plan.gui is None and not plan.click_through and not plan.follow_mouse
    assert "companion[pet]" in plan.notice()


def test_no_hotkey_library_is_said_once_with_the_way_out():
    """Without pynput she can still be hidden from the tray; the notice names the package."""
    plan = decide(Desktop(os="darwin", hotkeys=False))
    assert "pynput" in plan.notice()
    assert plan.notice().count(";") == 0  # one fallback, one clause


def test_no_display_at_all_is_a_clear_error():
    """Over SSH or in a service there is no desktop: the error says where she can be seen instead."""
    with pytest.raises(NoDisplay, match="/avatar"):
        decide(Desktop(os="linux"))
