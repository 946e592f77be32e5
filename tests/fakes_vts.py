"""A local VTube Studio stand-in speaking its public API over real websockets, written from the API docs.

Answers requests concurrently with random small delays (replies come back out
of order, events interleave), so clients that match replies by requestID work
and clients that read "the next frame" do not.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import websockets

HOTKEYS = [
    {"name": "Smile", "type": "ToggleExpression", "file": "smile.exp3.json", "hotkeyID": "hk-smile"},
    {"name": "Cry", "type": "ToggleExpression", "file": "cry.exp3.json", "hotkeyID": "hk-cry"},
    {"name": "Angry face", "type": "ToggleExpression", "file": "angry.exp3.json", "hotkeyID": "hk-angry"},
    {"name": "Think pose", "type": "TriggerAnimation", "file": "think.motion3.json", "hotkeyID": "hk-think"},
]


@dataclass
class FakeVTS:
    port: int = 0
    deny: bool = False  # the user clicks "Deny" in the pop-up
    jitter: int = 3  # at most this many loop turns before each reply: replies overtake each other, as on a real socket
    valid_tokens: set[str] = field(default_factory=set)
    hotkeys: list[dict[str, Any]] = field(default_factory=lambda: list(HOTKEYS))
    hotkey_errors: list[int] = field(default_factory=list)  # next HotkeyTriggerRequests fail with these ids
    inject_error: int | None = None  # every injection fails with this id (e.g. 454)
    triggered: list[str] = field(default_factory=list)
    injections: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    token_requests: int = 0
    subscriptions: list[str] = field(default_factory=list)
    connections: int = 0
    _server: Any = None
    _clients: set[Any] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> "FakeVTS":
        self._server = await websockets.serve(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """VTube Studio closes: every connection drops, the port stops listening."""
        if self._server is not None:
            self._server.close()
            for ws in list(self._clients):
                await ws.close()
            await self._server.wait_closed()
            self._server = None

    def revoke(self) -> None:
        self.valid_tokens.clear()

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        msg = json.dumps({"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0", "timestamp": int(time.time() * 1000),
                          "requestID": "event", "messageType": event, "data": data})
        for ws in list(self._clients):
            if event in getattr(ws, "subs", set()):
                await ws.send(msg)

    async def _serve(self, ws: Any) -> None:
        self.connections += 1
        ws.authed = False
        ws.subs = set()
        self._clients.add(ws)
        try:
            async for frame in ws:
                # Requests take effect in the order they arrive (as in VTube Studio); only the replies are jittered.
                msg = json.loads(frame)
                answer = self._apply(ws, msg)
                asyncio.get_running_loop().create_task(self._reply(ws, msg.get("requestID"), *answer))
        except websockets.ConnectionClosed:
            pass
        finally:
            self._clients.discard(ws)

    def _apply(self, ws: Any, msg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kind, data = msg.get("messageType", ""), msg.get("data") or {}
        try:
            return self._answer(ws, kind, data, msg.get("_recv", time.perf_counter()))
        except _ApiError as err:
            return "APIError", {"errorID": err.args[0], "message": err.args[1]}

    async def _reply(self, ws: Any, rid: Any, reply_type: str, body: dict[str, Any]) -> None:
        for _ in range(random.randint(0, self.jitter)):
            await asyncio.sleep(0)
        try:
            await ws.send(json.dumps({"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0", "timestamp": int(time.time() * 1000),
                                      "requestID": rid, "messageType": reply_type, "data": body, "extraField": "ignored"}))
        except websockets.ConnectionClosed:
            pass

    def _answer(self, ws: Any, kind: str, data: dict[str, Any], received: float) -> tuple[str, dict[str, Any]]:
        if kind == "AuthenticationTokenRequest":
            self.token_requests += 1
            if self.deny:
                raise _ApiError(50, "User has denied API access for your plugin.")
            if len(data.get("pluginName", "")) < 3:
                raise _ApiError(51, "pluginName too short")
            token = f"token-{self.token_requests}"
            self.valid_tokens.add(token)
            return "AuthenticationTokenResponse", {"authenticationToken": token}
        if kind == "AuthenticationRequest":
            ok = data.get("authenticationToken") in self.valid_tokens
            ws.authed = ok
            return "AuthenticationResponse", {"authenticated": ok, "reason": "ok" if ok else "Token invalid."}
        if kind == "APIStateRequest":
            return "APIStateResponse", {"active": True, "vTubeStudioVersion": "1.28.0", "currentSessionAuthenticated": ws.authed}
        if not ws.authed:
            raise _ApiError(8, "This request requires authentication.")
        if kind == "HotkeysInCurrentModelRequest":
            return "HotkeysInCurrentModelResponse", {"modelLoaded": True, "modelName": "Mika", "modelID": "m1", "availableHotkeys": self.hotkeys}
        if kind == "HotkeyTriggerRequest":
            if self.hotkey_errors:
                raise _ApiError(self.hotkey_errors.pop(0), "Hotkey queue full / cooldown")
            ref = data.get("hotkeyID", "")
            hk = next((h for h in self.hotkeys if h["hotkeyID"] == ref or h["name"].lower() == ref.lower()), None)
            if hk is None:
                raise _ApiError(201, "Hotkey not found")
            self.triggered.append(hk["hotkeyID"])
            return "HotkeyTriggerResponse", {"hotkeyID": hk["hotkeyID"]}
        if kind == "InjectParameterDataRequest":
            if self.inject_error is not None:
                raise _ApiError(self.inject_error, "Parameter MouthOpen is controlled by another plugin")
            self.injections.append((time.perf_counter(), {v["id"]: v["value"] for v in data.get("parameterValues", [])}))
            return "InjectParameterDataResponse", {}
        if kind == "EventSubscriptionRequest":
            if data.get("subscribe"):
                ws.subs.add(data.get("eventName"))
                self.subscriptions.append(data.get("eventName"))
            return "EventSubscriptionResponse", {"subscribedEventCount": len(ws.subs), "subscribedEvents": sorted(ws.subs)}
        if kind == "ExpressionActivationRequest":
            self.triggered.append(data.get("expressionFile", ""))
            return "ExpressionActivationResponse", {}
        raise _ApiError(0, f"unknown request {kind}")


class _ApiError(Exception):
    pass
