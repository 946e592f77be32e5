"""`companion pet`: find the running companion (or start one), then open her window until it is closed.

The window is a view of a companion process, never a second engine: the page talks to the companion's own web
server, and a companion this command started is stopped when the window closes, so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from companion.config import Settings
from companion.pet.platform import decide
from companion.pet.window import PetUnavailable, PetWindow, read_desktop

log = logging.getLogger(__name__)

START_TIMEOUT_S = 600.0  # the first start may load (or download) a model
CHILD_ENV = "COMPANION_PET_CHILD"  # set in a companion the pet started: its [pet] enabled opens no second window


class PetError(RuntimeError):
    """One line for the user: what is wrong and what to do."""


def companion_url(settings: Settings) -> str:
    """Where this data folder's companion serves its pages: the port it wrote at start, else the configured one."""
    port = settings.web.port
    try:
        port = int(json.loads((settings.data_path() / "run.json").read_text(encoding="utf-8"))["web_port"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"http://127.0.0.1:{port}"


def answering(url: str, token: str | None, timeout: float = 2.0) -> dict[str, Any] | None:
    """The companion's /health report, or None when nothing answers there."""
    request = urllib.request.Request(url.rstrip("/") + "/health")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - the companion's own loopback URL
            report = json.loads(resp.read())
            return report if isinstance(report, dict) else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def page_url(url: str, token: str | None, *, framed: bool) -> str:
    query = {"session": "pet"}
    if token:
        query["token"] = token
    if framed:
        query["framed"] = "1"
    return f"{url.rstrip('/')}/pet?{urlencode(query)}"


def start_companion(settings: Settings, url: str, token: str | None, say: Callable[[str], None]) -> subprocess.Popen[bytes]:
    """`companion run` for the pet, waited for until its web server answers."""
    command = [sys.executable, "-m", "companion"]
    if settings.source is not None:
        command += ["--config", str(settings.source)]
    command.append("run")
    say(f"starting the companion ({' '.join(command[2:])}); her window opens when it answers on {url}")
    log_path = settings.data_path() / "logs" / "pet-companion.out"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, CHILD_ENV: "1"})
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise PetError(f"the companion stopped while starting (exit {child.returncode}); its output is in {log_path}")
        if answering(url, token, timeout=1.0):
            return child
        time.sleep(0.5)
    stop_companion(child)
    raise PetError(f"the companion did not answer on {url} within {START_TIMEOUT_S:.0f} s; its output is in {log_path}")


def stop_companion(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.terminate()  # SIGTERM: the companion's clean stop (2 s at most)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


async def window_beside(settings: Settings, port: int) -> None:
    """`companion run`'s side of [pet] enabled: her window as a child process, until it is closed or we stop."""
    command = [sys.executable, "-m", "companion"]
    if settings.source is not None:
        command += ["--config", str(settings.source)]
    command += ["pet", "--url", f"http://127.0.0.1:{port}", "--no-start"]
    child = await asyncio.create_subprocess_exec(*command)
    try:
        code = await child.wait()
        if code not in (0, 130):
            log.error("her desktop window closed with exit code %s (run `companion pet` to see why)", code)
    finally:
        if child.returncode is None:
            child.terminate()  # the companion is stopping: so does her window


def run_pet(settings: Settings, *, url: str | None = None, start: bool = True, say: Callable[[str], None] = print) -> int:
    """Open her window beside the running companion; start one first when none answers (and ``start``)."""
    if not settings.web.enabled:
        raise PetError("the pet shows the companion's /pet page, so it needs the web server: set [web] enabled = true")
    token = settings.web_token()
    plan = decide(read_desktop())
    base = url or companion_url(settings)
    child = None
    health = answering(base, token)
    if health is None:
        if url is not None or not start:
            raise PetError(f"no companion answers on {base}: start it with `companion run` (or `companion pet` alone starts one)")
        child = start_companion(settings, base, token, say)
        health = answering(base, token) or {}
    notice = plan.notice()
    if notice:
        say(notice)
    pet = PetWindow(
        page_url(base, token, framed=not plan.transparent), plan, settings.data_path() / "pet.json",
        scale=settings.pet.scale, hotkey=settings.pet.hotkey, title=str(health.get("character") or "companion"),
    )
    try:
        pet.run()
    except PetUnavailable as exc:
        raise PetError(str(exc)) from exc
    finally:
        if child is not None:
            stop_companion(child)
    return 0
