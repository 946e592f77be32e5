"""A local stand-in for Twitch: EventSub websocket, Helix and OAuth endpoints, as documented."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from companion.testing import eventually
from tests.fakes import serve


@dataclass
class FakeTwitch:
    valid_tokens: set[str] = field(default_factory=lambda: {"old-token"})
    refresh_tokens: dict[str, str] = field(default_factory=lambda: {"refresh-1": "new-token"})
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    refreshed: int = 0
    port: int = 0
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "FakeTwitch":
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/helix/users", self._users)
        app.router.add_post("/helix/eventsub/subscriptions", self._subscribe)
        app.router.add_post("/helix/chat/messages", self._chat)
        app.router.add_post("/oauth2/token", self._token)
        self._runner, self.port = await serve(app, self.port)
        return self

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    def _authed(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in self.valid_tokens

    async def _users(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return web.json_response({"message": "Invalid OAuth token"}, status=401)
        login = request.query.get("login")
        user = {"id": "100", "login": "streamer"} if login == "streamer" else {"id": "200", "login": "mikabot"}
        return web.json_response({"data": [user] if login in (None, "streamer") else []})

    async def _subscribe(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return web.json_response({"message": "Invalid OAuth token"}, status=401)
        body = await request.json()
        self.subscriptions.append(body)
        return web.json_response({"data": [{"id": str(uuid.uuid4()), "status": "enabled", **body}]}, status=202)

    async def _chat(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return web.json_response({"message": "Invalid OAuth token"}, status=401)
        self.sent.append(await request.json())
        return web.json_response({"data": [{"is_sent": True}]})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        new = self.refresh_tokens.get(form.get("refresh_token", ""))
        if form.get("grant_type") != "refresh_token" or new is None:
            return web.json_response({"message": "Invalid refresh token"}, status=400)
        self.refreshed += 1
        self.valid_tokens = {new}
        return web.json_response({"access_token": new, "refresh_token": "refresh-2", "expires_in": 14000})

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        sid = f"session-{len(self.sessions) + 1}"
        self.sessions.append(sid)
        await ws.send_json(_frame("session_welcome", {"session": {"id": sid, "status": "connected", "keepalive_timeout_seconds": 10, "reconnect_url": None}}))
        async for msg in ws:
            if msg.type == WSMsgType.CLOSE:
                break
        return ws

    async def notify(self, kind: str, event: dict[str, Any]) -> None:
        live = [ws for ws in self._sockets if not ws.closed]
        await live[-1].send_json(_frame("notification", {"subscription": {"type": kind, "version": "1"}, "event": event}))

    async def ask_reconnect(self) -> None:
        live = [ws for ws in self._sockets if not ws.closed]
        await live[-1].send_json(_frame("session_reconnect", {"session": {"id": "x", "status": "reconnecting", "reconnect_url": f"ws://127.0.0.1:{self.port}/ws?moved=1"}}))

    async def drop(self) -> None:
        for ws in self._sockets:
            if not ws.closed:
                await ws.close()


def _frame(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"message_id": str(uuid.uuid4()), "message_type": kind, "message_timestamp": "2026-12-01T00:00:00Z"}, "payload": payload}


async def until(predicate, timeout: float = 10.0) -> None:
    """Until the chat adapter did what ``predicate`` checks over its sockets."""
    await eventually(predicate, timeout=timeout, what="the chat's change")


__all__ = ["FakeTwitch", "until", "json"]
