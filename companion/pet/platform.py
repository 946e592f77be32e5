"""What this desktop lets her window do, decided once at start, and the one notice when it falls back.

Pure: the facts (operating system, X11 or Wayland, a compositing manager, the toolkit) are read by
``pet.window`` and passed in, so each fallback a user on another desktop would meet is a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Desktop:
    """The facts the decision needs."""

    os: str  # sys.platform: "linux", "win32", "darwin"
    wayland: bool = False  # WAYLAND_DISPLAY is set (a Wayland session)
    x11: bool = False  # DISPLAY is set (X11, or XWayland inside a Wayland session)
    compositor: bool = True  # X11: a compositing manager owns _NET_WM_CM_S0 (else no window can be see-through)
    qt: bool = True  # the Qt toolkit under pywebview (the `pet` extra) imports
    hotkeys: bool = True  # a global hotkey library (pynput) imports


@dataclass(frozen=True)
class Plan:
    """How to open the window here."""

    gui: str | None  # pywebview's toolkit: "qt", or None for pywebview's own choice on this OS
    qt_platform: str | None = None  # QT_QPA_PLATFORM to set before Qt starts ("xcb": XWayland)
    frameless: bool = True
    transparent: bool = True
    on_top: bool = True
    click_through: bool = True  # clicks outside her and her controls reach the windows below
    remember_position: bool = True
    follow_mouse: bool = True  # she looks toward the pointer anywhere on the desktop
    hotkey: bool = True
    fallbacks: list[str] = field(default_factory=list)

    def notice(self) -> str | None:
        """One line for the user, or None when everything a desktop pet does works here."""
        if not self.fallbacks:
            return None
        return "her window falls back here: " + "; ".join(self.fallbacks)


def decide(desktop: Desktop) -> Plan:
    if desktop.os.startswith("linux") and not (desktop.wayland or desktop.x11):
        raise NoDisplay(
            "no display: neither DISPLAY nor WAYLAND_DISPLAY is set. Run `companion pet` on the desktop, "
            "or open http://127.0.0.1:8765/avatar in a browser instead"
        )
    fallbacks: list[str] = []
    gui = "qt" if desktop.qt else None
    if not desktop.qt:
        fallbacks.append(
            "without Qt her window cannot let clicks through or see the pointer outside it "
            "(pip install 'companion[pet]' for the full pet)"
        )
    plan = Plan(gui=gui, click_through=desktop.qt, follow_mouse=desktop.qt, hotkey=desktop.hotkeys, fallbacks=fallbacks)
    if desktop.os.startswith("linux"):
        plan = _linux(desktop, plan)
    if not desktop.hotkeys:
        fallbacks.append("no global hotkey without pynput (pip install pynput): hide and show her from the tray icon")
    return plan


def _linux(desktop: Desktop, plan: Plan) -> Plan:
    fallbacks = plan.fallbacks
    if desktop.wayland and desktop.x11 and desktop.qt:
        # XWayland: the compositor composites every window, and X11 lets a window stay on top, be placed and
        # take clicks only where it is drawn, which Wayland's own protocol leaves to the compositor.
        return replace(plan, qt_platform="xcb")
    if desktop.wayland and not desktop.x11:
        fallbacks.append("on Wayland without XWayland the compositor places windows and keeps none on top, "
                         "so she stands in a normal window where it puts her")
        return replace(plan, on_top=False, remember_position=False, follow_mouse=False, hotkey=False,
                        qt_platform="wayland" if desktop.qt else None)
    if not desktop.compositor:
        fallbacks.append("no compositing manager is running, so her window cannot be see-through: she stands in a "
                         "normal window (start one, such as picom or xcompmgr, for a desktop pet)")
        return replace(plan, frameless=False, transparent=False, click_through=False)
    return plan


class NoDisplay(RuntimeError):
    """There is no desktop to put a window on."""
