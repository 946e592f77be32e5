"""The built-in web avatar's side of the server: its events on /events, its settings, the user's image files.

The avatar in the page and in the OBS source (/avatar) is driven by the same
events as VTube Studio: emotion cues from the reply, the state (idle,
listening, thinking, speaking) and the playback level the VTube Studio lip
sync reads, streamed at 50 Hz while the companion speaks (and once more at 0
when it stops, so the mouth closes).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from companion.avatar.states import AvatarStates
from companion.runtime.events import BargedIn, EmotionCue, SpeechStarted, TurnEnded, TurnStarted

if TYPE_CHECKING:
    from companion.config import Settings
    from companion.core.engine import Companion

__all__ = ["AvatarFeed", "LEVEL_HZ"]

LEVEL_HZ = 50
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}\.(png|webp|gif|jpe?g)$")
_CONTENT_TYPES = {"png": "image/png", "webp": "image/webp", "gif": "image/gif", "jpg": "image/jpeg", "jpeg": "image/jpeg"}


class AvatarFeed:
    def __init__(self, companion: "Companion", settings: "Settings", broadcast: Callable[[dict[str, Any]], None],
                 listeners: Callable[[], int], *, group: bool = False) -> None:
        self.companion = companion
        self.settings = settings
        self.broadcast = broadcast
        self.listeners = listeners
        self.states = AvatarStates()
        self._undo: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._last_level = 0.0
        # a group ([[characters]]): every message says whose it is, and /avatar?character=NAME moves for hers only
        self.group = group
        self.character = ""  # who has the stage now

    def start(self) -> None:
        bus = self.companion.bus
        self._undo = [
            bus.subscribe(EmotionCue, lambda e: self._send({"type": "emotion", "emotion": e.emotion})),
            bus.subscribe(SpeechStarted, lambda e: self._state(self.states.speech_started())),
            bus.subscribe(TurnStarted, self._turn_started),
            bus.subscribe(TurnEnded, lambda e: self._state(self.states.turn_ended(time.perf_counter()))),
            bus.subscribe(BargedIn, lambda e: self._level(0.0, force=True)),
        ]
        self._task = asyncio.create_task(self._levels(), name="avatar-levels")

    async def stop(self) -> None:
        for undo in self._undo:
            undo()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _turn_started(self, event: TurnStarted) -> None:
        self.character = event.character
        self._state(self.states.turn_started())

    def _send(self, message: dict[str, Any]) -> None:
        self.broadcast({**message, "character": self.character} if self.group else message)

    def _state(self, state: str) -> None:
        self._send({"type": "state", "state": state})

    def _level(self, value: float, force: bool = False) -> None:
        if value > 0 or self._last_level > 0 or force:
            self._send({"type": "level", "value": round(value, 4)})
        self._last_level = value

    async def _levels(self) -> None:
        """The level heard now, 50 times a second while anyone listens on /events."""
        level = self.companion.audio_level
        while True:
            if not self.listeners():
                await asyncio.sleep(0.25)  # nobody watches: check now and then, not 50 times a second
                continue
            await asyncio.sleep(1 / LEVEL_HZ)
            now = time.perf_counter()
            value = level.at(now)
            before = self.states.state
            after = self.states.level(value, now)
            self._level(value)
            if after != before:
                self._state(after)

    # -- HTTP ----------------------------------------------------------------------

    async def config(self, request: web.Request) -> web.Response:
        """What the avatar pages need: the mode, the user's image files, whether a VRM is there."""
        cfg = self.settings.avatar.web

        def look() -> tuple[list[str], bool]:  # file system work off the event loop (a folder may be on a slow disk)
            folder = Path(cfg.png_folder).expanduser() if cfg.png_folder else None
            images = sorted(p.name for p in folder.iterdir() if _IMAGE.match(p.name) and p.is_file()) if folder and folder.is_dir() else []
            vrm = Path(cfg.vrm_file).expanduser() if cfg.vrm_file else None
            return images, bool(vrm and vrm.is_file())

        images, has_vrm = await asyncio.to_thread(look)
        return web.json_response({
            "mode": cfg.mode, "show_on_page": cfg.show_on_page, "mouth_gain": cfg.mouth_gain, "images": images, "vrm": has_vrm,
        })

    async def file(self, request: web.Request) -> web.StreamResponse:
        """One of the user's avatar files: an image from png_folder by plain name, or the VRM model."""
        cfg = self.settings.avatar.web
        name = request.match_info["name"]
        if name == "model.vrm" and cfg.vrm_file:
            path = Path(cfg.vrm_file).expanduser()
            content_type = "model/gltf-binary"
        elif _IMAGE.match(name) and cfg.png_folder:
            path = Path(cfg.png_folder).expanduser() / name
            content_type = _CONTENT_TYPES[name.rsplit(".", 1)[1].lower()]
        else:
            raise web.HTTPNotFound()
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
