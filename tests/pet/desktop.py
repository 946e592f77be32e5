"""A real X desktop for the pet's tests: Xvfb with a compositing manager, screenshots, and real pointer and keys."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from companion.testing import eventually


@dataclass
class Screen:
    display: str
    width: int
    height: int

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
        env["DISPLAY"] = self.display
        return env

    def grab(self) -> "object":
        """The whole screen as a PIL image (what a person would see)."""
        from PIL import ImageGrab

        return ImageGrab.grab(xdisplay=self.display)

    def xdotool(self, *args: str) -> str:
        out = subprocess.run(["xdotool", *args], env=self.env(), capture_output=True, text=True, timeout=20, check=True)
        return out.stdout


def need_desktop() -> None:
    missing = [tool for tool in ("Xvfb", "xcompmgr", "xdotool") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} missing in CI: scripts/apt-packages.sh should have installed them")
        pytest.skip(f"no virtual desktop here ({', '.join(missing)} not installed: apt install xvfb xcompmgr xdotool)")
    try:
        import webview  # noqa: F401
        from PyQt6 import QtWebEngineWidgets  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the pet extra is missing in CI: {exc}")
        pytest.skip(f"the pet extra is not installed ({exc}): pip install -e '.[pet]'")


@contextmanager
def virtual_desktop(width: int = 1280, height: int = 800) -> Iterator[Screen]:
    """Xvfb (its own display number, told through -displayfd) and xcompmgr, so windows can be see-through."""
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{width}x{height}x24", "+extension", "Composite", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write)
    number = b""
    with os.fdopen(read, "rb") as pipe:
        while not number.endswith(b"\n"):
            byte = pipe.read(1)
            if not byte:
                break
            number += byte
    screen = Screen(f":{number.decode().strip()}", width, height)
    compositor = subprocess.Popen(["xcompmgr"], env=screen.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield screen
    finally:
        for proc in (compositor, xvfb):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


class PageProbe:
    """Reads the pet window's page through Chromium's DevTools protocol (QtWebEngine's remote debugging port)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._ws = None
        self._session = None
        self._id = 0

    async def ready(self) -> bool:
        import aiohttp

        if self._ws is not None and not self._ws.closed:
            return True
        try:
            self._session = self._session or aiohttp.ClientSession()
            async with self._session.get(f"http://127.0.0.1:{self.port}/json") as r:
                targets = [t for t in await r.json() if t.get("type") == "page" and "/pet" in t.get("url", "")]
            if not targets:
                return False
            self._ws = await self._session.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0)
            return True
        except (aiohttp.ClientError, OSError, ValueError):
            return False

    async def js(self, expression: str):  # noqa: ANN201 - whatever the page returns, as JSON
        self._id += 1
        await self._ws.send_json({"id": self._id, "method": "Runtime.evaluate",
                                  "params": {"expression": expression, "returnByValue": True, "awaitPromise": True}})
        while True:
            msg = await self._ws.receive_json()
            if msg.get("id") == self._id:
                result = msg.get("result", {})
                if "exceptionDetails" in result:
                    raise AssertionError(f"{expression}: {result['exceptionDetails']}")
                return result.get("result", {}).get("value")

    async def centre(self, element_id: str) -> list[float]:
        """The middle of an element, in the window's pixels (where a person would click it), once it is shown.

        The window's own controls (the close button) appear only when the native window has first spoken to the
        page: asked before that, a hidden element's middle is the window's see-through corner.
        """
        where = (f"(() => {{ const e = document.getElementById({element_id!r}), r = e.getBoundingClientRect(); "
                 "return e.hidden || r.width === 0 ? null : [r.left + r.width / 2, r.top + r.height / 2]; })()")
        found: list[list[float]] = []

        async def shown() -> bool:
            middle = await self.js(where)
            if middle is not None:
                found.append(middle)
            return middle is not None

        await eventually(shown, timeout=30, every=0.05, what=f"#{element_id} shown in her window")
        return found[-1]

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
