"""The pet's window: pywebview, and Qt under it for what pywebview leaves out (click-through, the pointer, the tray).

Everything the window does to the desktop happens on the GUI thread: a Qt timer there exchanges messages with the
page (``_exchange``), and the hotkey's thread hands its calls over through ``_OnGui``. The rules (where she stands, what falls back) are in
``geometry`` and ``platform``; this module only carries them out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from companion.pet import geometry
from companion.pet.platform import Desktop, Plan

log = logging.getLogger(__name__)

MAILBOX_MS = 80  # how often the window tells the page where the pointer is and takes the page's requests
SCREENS_MS = 2000  # how often she checks that her screen is still there
SAVE_AFTER_S = 0.6  # a drag ends: the place is written once it has stopped moving


class PetUnavailable(RuntimeError):
    """The window cannot open here: the message says what to install."""


INSTALL_HINT = (
    "pip install 'companion[pet]' (pywebview with Qt); on Debian or Ubuntu also: "
    "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libnss3 libxkbcommon-x11-0"
)


def read_desktop() -> Desktop:
    """The facts ``platform.decide`` needs, read from this session."""
    wayland = bool(os.environ.get("WAYLAND_DISPLAY"))
    x11 = bool(os.environ.get("DISPLAY"))
    qt = importlib.util.find_spec("PyQt6") is not None and importlib.util.find_spec("PyQt6.QtWebEngineWidgets") is not None
    return Desktop(
        os=sys.platform, wayland=wayland, x11=x11,
        compositor=_x11_compositor() if (x11 and not wayland and sys.platform.startswith("linux")) else True,
        qt=qt, hotkeys=importlib.util.find_spec("pynput") is not None,
    )


def _x11_compositor() -> bool:
    """Whether a compositing manager runs on this X display (the owner of _NET_WM_CM_S<screen>)."""
    name = ctypes.util.find_library("X11")
    if not name:
        return True  # cannot tell: try the see-through window
    try:
        x = ctypes.cdll.LoadLibrary(name)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x.XInternAtom.restype = ctypes.c_ulong
        x.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        x.XGetSelectionOwner.restype = ctypes.c_ulong
        x.XDefaultScreen.argtypes = [ctypes.c_void_p]
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = x.XOpenDisplay(None)
        if not display:
            return True
        try:
            atom = x.XInternAtom(display, f"_NET_WM_CM_S{x.XDefaultScreen(display)}".encode(), 0)
            return bool(x.XGetSelectionOwner(display, atom))
        finally:
            x.XCloseDisplay(display)
    except (OSError, AttributeError):
        return True


class PetWindow:
    """One pet window showing ``url`` (the companion's /pet page) until it is closed."""

    def __init__(self, url: str, plan: Plan, place_file: Path, *, scale: float = 1.0, hotkey: str = "", title: str = "companion") -> None:
        self.url = url
        self.plan = plan
        self.place_file = place_file
        self.hotkey = hotkey
        self.title = title
        self._remembered = geometry.load(place_file) if plan.remember_position else None
        self.geometry: geometry.Geometry | None = None  # where she stands, once placed
        self._first_scale = scale
        self._scale = scale  # her size now (the wheel changes it)
        self._window: Any = None
        self._gui: _OnGui | None = None
        self._save_timer: threading.Timer | None = None
        self._last_pointer: tuple[int, int] | None = None
        self._hidden = False
        self._keep: list[Any] = []  # Qt objects that must outlive the start-up callback

    def run(self) -> None:
        """Open the window and return when it is closed (the GUI's main loop runs on this thread)."""
        if self.plan.qt_platform:
            os.environ.setdefault("QT_QPA_PLATFORM", self.plan.qt_platform)
        # Chromium inside Qt: no sandbox helper is installed with the wheel, and a software-drawn page is enough for her.
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        for flag in ("--disable-gpu", "--no-sandbox") if sys.platform.startswith("linux") else ():
            if flag not in flags:
                flags = f"{flags} {flag}".strip()
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = flags
        try:
            import webview
        except ImportError as exc:
            raise PetUnavailable(f"the desktop pet needs pywebview ({exc}): {INSTALL_HINT}") from exc
        port = os.environ.get("COMPANION_PET_DEVTOOLS_PORT")  # the tests read the page through Chromium's DevTools
        if port and self.plan.gui == "qt":
            webview.settings["REMOTE_DEBUGGING_PORT"] = int(port)
        place = self._remembered or geometry.Geometry(0, 0, self._first_scale)
        kwargs: dict[str, Any] = {"width": place.width, "height": place.height}
        if self._remembered is not None:
            kwargs.update(x=place.x, y=place.y)
        self._scale = place.scale
        self._window = webview.create_window(
            self.title, self.url, frameless=self.plan.frameless, transparent=self.plan.transparent,
            on_top=self.plan.on_top, easy_drag=False, focus=True,
            background_color="#000000" if self.plan.transparent else "#2b2540", **kwargs,
        )
        self._window.events.moved += self._moved
        try:
            webview.start(self._started, gui=self.plan.gui, private_mode=False,  # type: ignore[arg-type]
                          storage_path=str(self.place_file.parent / "pet-webview"))
        except Exception as exc:  # noqa: BLE001 - a toolkit that cannot start is one clear line, not a traceback
            raise PetUnavailable(f"her window could not open: {exc}; {INSTALL_HINT}") from exc
        finally:
            if self._save_timer is not None:
                self._save_timer.cancel()
                self._save_now()

    # -- after the window is up (pywebview's thread) -----------------------------------------------------

    def _started(self) -> None:
        if self.plan.gui != "qt":
            return
        # Placed before it is shown, it would be centred again (and the Qt window may not exist yet).
        self._window.events.shown.wait(30)
        from qtpy.QtCore import QObject, Signal, Slot

        class OnGui(QObject):
            call = Signal(object)

            @Slot(object)
            def run(self, fn: Callable[[], None]) -> None:
                fn()

        gui = OnGui()
        gui.moveToThread(self._window.native.thread())  # its slot now runs on the GUI thread: calls are queued there
        gui.call.connect(gui.run)
        self._gui = _OnGui(gui)
        self._gui(self._set_up_qt)
        if self.hotkey and self.plan.hotkey:
            self._start_hotkey()

    def _set_up_qt(self) -> None:
        from qtpy.QtCore import QTimer
        from qtpy.QtGui import QGuiApplication

        native = self._window.native
        screens = _screen_rects(QGuiApplication)
        remembered = self._remembered
        # The first time: the bottom right of the main screen; then where she was left, if that screen is still there.
        self._place(geometry.first_place(screens[0], self._scale) if remembered is None else geometry.keep_on_screen(remembered, screens))
        timers = [(MAILBOX_MS, self._exchange)]
        if self.plan.remember_position:
            timers.append((SCREENS_MS, self._screens))
        for every, fn in timers:
            timer = QTimer(native)
            timer.timeout.connect(fn)
            timer.start(every)
            self._keep.append(timer)
        self._tray()

    def _place(self, g: geometry.Geometry) -> None:
        native = self._window.native
        native.setGeometry(g.x, g.y, g.width, g.height)
        self.geometry = g
        self._save_soon()

    def _exchange(self) -> None:
        """Tell the page where the pointer is and take what it asked of the window.

        The page cannot call us (its Content-Security-Policy forbids the eval a script bridge needs, and we keep
        it), so it queues its requests and this takes them with ``petExchange``; script the host runs is not the
        page's eval."""
        from qtpy.QtGui import QCursor

        native = self._window.native
        pointer = "null"
        if self.plan.follow_mouse:
            pos = QCursor.pos()
            here = (pos.x() - native.x(), pos.y() - native.y())
            if here != self._last_pointer:
                self._last_pointer = here
                pointer = f"[{here[0]}, {here[1]}]"
        script = f"window.petExchange ? window.petExchange({pointer}) : null"
        native.webview.page().runJavaScript(script, 0, self._requests)

    def _requests(self, asked: Any) -> None:
        for item in asked if isinstance(asked, list) else []:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], list)):
                continue
            name, args = item
            if name == "regions" and args and isinstance(args[0], list):
                self.regions(args[0])
            elif name == "scroll" and args and isinstance(args[0], (int, float)):
                self.scroll(float(args[0]))
            elif name == "close":
                self.close()

    def _screens(self) -> None:
        from qtpy.QtGui import QGuiApplication

        native = self._window.native
        now = geometry.Geometry(native.x(), native.y(), self._scale)
        kept = geometry.keep_on_screen(now, _screen_rects(QGuiApplication))
        if kept != now:
            log.info("her screen went away: she is back on the main screen")
            self._place(kept)

    def _tray(self) -> None:
        from qtpy.QtGui import QIcon, QPixmap
        from qtpy.QtWidgets import QMenu, QSystemTrayIcon

        if not QSystemTrayIcon.isSystemTrayAvailable():
            return
        pixmap = QPixmap(32, 32)
        pixmap.fill(_qt_colour("#7c5cff"))
        tray = QSystemTrayIcon(QIcon(pixmap), self._window.native)
        menu = QMenu()
        menu.addAction("Show / hide", self.toggle)
        menu.addAction("Close", self.close)
        tray.setContextMenu(menu)
        tray.setToolTip(self.title)
        tray.activated.connect(lambda reason: self.toggle())
        tray.show()
        self._keep.extend([tray, menu])

    def _start_hotkey(self) -> None:
        try:
            from pynput import keyboard
        except ImportError:
            return
        try:
            listener = keyboard.GlobalHotKeys({self.hotkey: lambda: self._gui and self._gui(self.toggle)})
            listener.daemon = True
            listener.start()
        except (ValueError, Exception) as exc:  # noqa: BLE001 - a hotkey the desktop refuses is not fatal
            log.warning("the pet's hotkey %r is not available here: %s", self.hotkey, exc)

    def close(self) -> None:
        if self._window is not None:
            self._window.destroy()

    def toggle(self) -> None:
        native = self._window.native
        self._hidden = not self._hidden
        native.setVisible(not self._hidden)

    # -- the page's requests (on the GUI thread, from ``_exchange``) -----------------------------------------

    def regions(self, rects: list[Any]) -> None:
        """Clicks count only on these rectangles (her, the bubble, the bar); elsewhere they reach the desktop."""
        if not self.plan.click_through:
            return
        from qtpy.QtCore import QRect
        from qtpy.QtGui import QRegion

        region = QRegion()
        for r in rects[:16]:
            if isinstance(r, list) and len(r) >= 4 and all(isinstance(v, (int, float)) for v in r[:4]):
                x, y, w, h = (int(v) for v in r[:4])
                region = region.united(QRegion(QRect(x, y, max(1, w), max(1, h))))
        self._window.native.setMask(region)

    def scroll(self, notches: float) -> None:
        native = self._window.native
        now = geometry.Geometry(native.x(), native.y(), self._scale)
        bigger = geometry.scrolled(now, max(-3.0, min(3.0, notches)))
        self._scale = bigger.scale
        self._place(bigger)

    # -- remembering the place ----------------------------------------------------------------------------

    def _moved(self, x: int, y: int) -> None:
        if self.geometry is None:
            return  # the toolkit placing the window before we do
        self.geometry = geometry.Geometry(int(x), int(y), self._scale)
        self._save_soon()

    def _save_soon(self) -> None:
        if not self.plan.remember_position:
            return
        if self._save_timer is not None:
            self._save_timer.cancel()
        self._save_timer = threading.Timer(SAVE_AFTER_S, self._save_now)
        self._save_timer.daemon = True
        self._save_timer.start()

    def _save_now(self) -> None:
        if self.geometry is not None and self.plan.remember_position:
            try:
                geometry.save(self.place_file, self.geometry)
            except OSError as exc:
                log.warning("could not remember where she stands (%s): %s", self.place_file, exc)


class _OnGui:
    """Runs a function on the GUI thread (a queued Qt signal), whichever thread asks."""

    def __init__(self, carrier: Any) -> None:
        self._carrier = carrier

    def __call__(self, fn: Callable[[], None]) -> None:
        self._carrier.call.emit(fn)


def _screen_rects(app: Any) -> list[geometry.Rect]:
    """The screens' usable areas, the main screen first."""
    primary = app.primaryScreen()
    screens = [primary] + [s for s in app.screens() if s is not primary]
    rects = []
    for s in screens:
        if s is None:
            continue
        g = s.availableGeometry()
        rects.append(geometry.Rect(g.x(), g.y(), g.width(), g.height()))
    return rects or [geometry.Rect(0, 0, 1280, 720)]


def _qt_colour(value: str) -> Any:
    from qtpy.QtGui import QColor

    return QColor(value)
