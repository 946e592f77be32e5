"""An asyncio client for the VTube Studio public API on ``websockets``.

One reader task owns the socket's receiving side: replies are matched to their
request by ``requestID`` and events go to subscribers, so any number of
concurrent requests and a stream of events never get mixed up (the reason we do
not use pyvts, which reads "the next frame" after each send).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from companion.avatar.protocol import AUTH_ERRORS, TOKEN_REQUEST_DENIED, ApiError, envelope, parse
from companion.runtime.tasks import spawn

log = logging.getLogger(__name__)

__all__ = ["VTSClient", "AvatarError", "AvatarAuthError", "AvatarUnavailable"]

EventHandler = Callable[[dict[str, Any]], Awaitable[None] | None]


class AvatarError(Exception):
    """A VTube Studio problem the user can fix; the message says how."""


class AvatarAuthError(AvatarError):
    """VTube Studio did not let the plugin in (denied, revoked, or API access off)."""


class AvatarUnavailable(AvatarError):
    """VTube Studio is not running, not reachable, or went away."""


def default_icon() -> str:
    """A 128x128 PNG (plain, generated) for the plugin approval pop-up."""
    import struct
    import zlib

    width = height = 128
    row = b"\x00" + bytes([235, 120, 160]) * width  # filter byte + a pink row
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


class VTSClient:
    def __init__(
        self,
        url: str,
        *,
        token_path: Path,
        plugin_name: str = "companion",
        developer: str = "companion project",
        icon_b64: str | None = None,
        request_timeout: float = 5.0,
        approval_timeout: float = 120.0,
    ) -> None:
        self.url = url
        self.token_path = token_path
        self.plugin_name = plugin_name
        self.developer = developer
        self.icon_b64 = icon_b64 if icon_b64 is not None else default_icon()
        self.request_timeout = request_timeout
        self.approval_timeout = approval_timeout
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._handlers: dict[str, list[EventHandler]] = {}
        self._send_lock = asyncio.Lock()
        self.closed = asyncio.Event()
        self.closed.set()

    # -- connection -------------------------------------------------------------

    async def connect(self) -> None:
        """Open the socket and authenticate; raises AvatarUnavailable / AvatarAuthError."""
        try:
            import websockets
        except ImportError:
            raise AvatarError("the avatar needs websockets: pip install 'companion[avatar]'") from None
        try:
            self._ws = await asyncio.wait_for(websockets.connect(self.url, max_size=2**24, open_timeout=5), 6)
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise AvatarUnavailable(
                f"VTube Studio is not reachable at {self.url} ({exc or type(exc).__name__}); start it and turn on "
                "Settings > 'Start API (allow plugins)', or fix [avatar] url"
            ) from None
        self.closed.clear()
        self._reader = asyncio.create_task(self._read(), name="vts-reader")
        await self._authenticate()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        self._ws = None
        self.closed.set()

    @property
    def connected(self) -> bool:
        return not self.closed.is_set()

    # -- requests and events ------------------------------------------------------

    def on(self, event_name: str, handler: EventHandler) -> None:
        """Call ``handler(data)`` for every ``event_name`` (e.g. "ModelLoadedEvent")."""
        self._handlers.setdefault(event_name, []).append(handler)

    def send_nowait(self, message_type: str, data: dict[str, Any] | None = None) -> asyncio.Future[dict[str, Any]]:
        """Send without waiting for the reply (lip sync at 30-60 Hz); the future resolves or fails later."""
        msg = envelope(message_type, data)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if not self.connected:
            future.set_exception(AvatarUnavailable("VTube Studio is not connected"))
            return future
        self._pending[msg["requestID"]] = (message_type, future)
        spawn(self._send(msg, future), "vts-send")
        return future

    async def request(self, message_type: str, data: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Send a request and return its reply's ``data``; APIError replies raise :class:`ApiError`."""
        future = self.send_nowait(message_type, data)
        try:
            return await asyncio.wait_for(future, timeout or self.request_timeout)
        except TimeoutError:
            raise AvatarUnavailable(f"VTube Studio did not answer {message_type} within {timeout or self.request_timeout:g} s") from None

    async def _send(self, msg: dict[str, Any], future: asyncio.Future[dict[str, Any]]) -> None:
        try:
            async with self._send_lock:
                await self._ws.send(json.dumps(msg))
        except Exception as exc:  # noqa: BLE001 - the socket went away
            self._pending.pop(msg["requestID"], None)
            if not future.done():
                future.set_exception(AvatarUnavailable(f"VTube Studio connection lost ({type(exc).__name__})"))

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                reply = parse(frame)
                if reply is None:
                    continue
                waiting = self._pending.pop(reply.request_id, None) if reply.request_id and not reply.is_event else None
                if waiting is not None:
                    request, future = waiting
                    if not future.done():
                        if reply.is_error:
                            future.set_exception(reply.error(request))
                        else:
                            future.set_result(reply.data)
                elif reply.is_event:
                    for handler in self._handlers.get(reply.message_type, []):
                        try:
                            result = handler(reply.data)
                            if asyncio.iscoroutine(result):
                                spawn(result, "vts-event-handler")
                        except Exception:  # noqa: BLE001 - one bad handler must not stop the reader
                            log.exception("avatar: %s handler failed", reply.message_type)
        except Exception as exc:  # noqa: BLE001 - ConnectionClosed and friends: reported through `closed`
            log.debug("avatar: reader stopped: %r", exc)
        finally:
            self.closed.set()
            for _, future in self._pending.values():
                if not future.done():
                    future.set_exception(AvatarUnavailable("VTube Studio connection lost"))
            self._pending.clear()

    # -- authentication -----------------------------------------------------------

    def _read_token(self) -> str | None:
        try:
            token = self.token_path.read_text().strip()
        except OSError:
            return None
        return token or None

    def _write_token(self, token: str) -> None:
        self.token_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
        os.chmod(self.token_path, 0o600)

    async def _new_token(self) -> str:
        log.warning("avatar: asking VTube Studio for access: click 'Allow' in its pop-up for plugin %r", self.plugin_name)
        try:
            data = await self.request(
                "AuthenticationTokenRequest",
                {"pluginName": self.plugin_name, "pluginDeveloper": self.developer, "pluginIcon": self.icon_b64},
                timeout=self.approval_timeout,
            )
        except ApiError as exc:
            if exc.error_id == TOKEN_REQUEST_DENIED:
                raise AvatarAuthError(
                    f"VTube Studio denied access to plugin {self.plugin_name!r}. Restart the companion and click "
                    "'Allow' in VTube Studio's pop-up (or allow it under Settings > Plugins)"
                ) from None
            if exc.error_id == 1:
                raise AvatarAuthError(
                    "VTube Studio's plugin API is off: turn on Settings > 'Start API (allow plugins)'"
                ) from None
            raise AvatarAuthError(f"VTube Studio refused the plugin: {exc.message} (error {exc.error_id})") from None
        token = str(data.get("authenticationToken", ""))
        if not token:
            raise AvatarAuthError("VTube Studio sent an empty authentication token")
        self._write_token(token)
        return token

    async def _authenticate(self) -> None:
        token = self._read_token()
        for attempt in range(2):
            if token is None:
                token = await self._new_token()
            try:
                data = await self.request(
                    "AuthenticationRequest",
                    {"pluginName": self.plugin_name, "pluginDeveloper": self.developer, "authenticationToken": token},
                )
            except ApiError as exc:
                if exc.error_id in AUTH_ERRORS and attempt == 0:
                    token = None
                    continue
                raise AvatarAuthError(f"VTube Studio authentication failed: {exc.message} (error {exc.error_id})") from None
            if data.get("authenticated"):
                return
            # A revoked token: ask once for a new one (VTube Studio shows the pop-up again).
            log.warning("avatar: VTube Studio rejected the stored token (%s); asking again", data.get("reason", "revoked"))
            self.token_path.unlink(missing_ok=True)
            token = None
        raise AvatarAuthError(
            f"VTube Studio does not accept plugin {self.plugin_name!r}; approve it in VTube Studio "
            "(Settings > Plugins, or 'Allow' in the pop-up) and restart the companion"
        )
