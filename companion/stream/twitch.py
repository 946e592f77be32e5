"""Twitch chat and events through EventSub over websocket, plus Helix for subscriptions and chat replies.

Raw protocol on aiohttp (the wire format is documented and small), so the
adapter runs against a local stand-in in tests: session_welcome -> create
subscriptions for the session -> notifications; session_keepalive watchdog;
session_reconnect to the given URL; Helix 401 -> refresh the user token once
and retry. Tokens live in ``DATA/twitch_tokens.json`` (mode 600); get them with
``companion stream twitch-login`` (OAuth device flow, no redirect server).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from companion.config import masking
from companion.runtime.supervisor import RetryLater
from companion.stream.message import ChatMessage

if TYPE_CHECKING:
    from companion.config import TwitchSection

log = logging.getLogger(__name__)

__all__ = ["TwitchEventSub", "TokenStore", "TwitchError", "SCOPES", "device_login"]

SCOPES = "user:read:chat user:write:chat user:bot channel:bot bits:read channel:read:subscriptions channel:read:redemptions moderator:read:followers"
SUBSCRIPTIONS = [
    ("channel.chat.message", "1", "chat"),
    ("channel.follow", "2", "mod"),
    ("channel.subscribe", "1", "b"),
    ("channel.subscription.gift", "1", "b"),
    ("channel.cheer", "1", "b"),
    ("channel.raid", "1", "to"),
    ("channel.channel_points_custom_reward_redemption.add", "1", "b"),
]


class TwitchError(Exception):
    """Twitch refused or is unreachable; the message says what to do."""


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        masking.register(str(v) for v in data.values())  # OAuth tokens are secrets learned at run time
        return data

    def save(self, data: dict[str, Any]) -> None:
        masking.register(str(v) for v in data.values())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.chmod(self.path, 0o600)


def _client_secret(cfg: "TwitchSection") -> str:
    return os.environ.get(cfg.client_secret_env, "")


async def device_login(cfg: "TwitchSection", store: TokenStore, *, show: Callable[[str], None] = print, session: aiohttp.ClientSession | None = None) -> None:
    """OAuth device code flow: print a code and a URL, wait for the user to approve, store the tokens."""
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.post(f"{cfg.auth_url}/device", data={"client_id": cfg.client_id, "scopes": SCOPES}) as resp:
            if resp.status != 200:
                raise TwitchError(f"Twitch refused the login request ({resp.status}): check [stream.twitch] client_id")
            device = await resp.json()
        show(f"Open {device['verification_uri']} and enter the code {device.get('user_code', '')} (logged in as the bot account)")
        deadline = time.monotonic() + float(device.get("expires_in", 1800))
        while time.monotonic() < deadline:
            await asyncio.sleep(float(device.get("interval", 5)))
            form = {"client_id": cfg.client_id, "scopes": SCOPES, "device_code": device["device_code"],
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code"}
            async with session.post(f"{cfg.auth_url}/token", data=form) as resp:
                body = await resp.json()
            if resp.status == 200:
                store.save({"access_token": body["access_token"], "refresh_token": body.get("refresh_token", "")})
                show("Twitch login stored.")
                return
            if body.get("message") not in ("authorization_pending", "slow_down"):
                raise TwitchError(f"Twitch login failed: {body.get('message', resp.status)}")
        raise TwitchError("the Twitch login code expired; run the login again")
    finally:
        if own:
            await session.close()


class TwitchEventSub:
    name = "twitch"

    def __init__(
        self, cfg: "TwitchSection", store: TokenStore, on_message: Callable[[ChatMessage], Any], *, keepalive: int = 30,
        on_status: Callable[[str, str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_status = on_status or (lambda state, detail: None)  # "connected" resets the supervisor's delay
        self.store = store
        self.on_message = on_message
        self.keepalive = keepalive
        self.broadcaster_id = ""
        self.bot_id = ""
        self.session_id = ""
        self.subscribed: list[str] = []
        self.connected = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._tokens: dict[str, Any] | None = None  # read from disk once; written back when refreshed

    # -- Helix -------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self._tokens is None:
            self._tokens = self.store.load()
        token = self._tokens.get("access_token", "")
        if not token:
            raise TwitchError("no Twitch login: run `companion stream twitch-login` (see README, Twitch)")
        return {"Client-Id": self.cfg.client_id, "Authorization": f"Bearer {token}"}

    async def _refresh(self) -> None:
        tokens = self._tokens if self._tokens is not None else self.store.load()
        form = {"grant_type": "refresh_token", "refresh_token": tokens.get("refresh_token", ""),
                "client_id": self.cfg.client_id, "client_secret": _client_secret(self.cfg)}
        assert self._http is not None
        async with self._http.post(f"{self.cfg.auth_url}/token", data=form) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                raise TwitchError("the Twitch login expired and could not be refreshed: run `companion stream twitch-login` again")
        self._tokens = {**tokens, "access_token": body["access_token"], "refresh_token": body.get("refresh_token", tokens.get("refresh_token", ""))}
        self.store.save(self._tokens)
        log.info("twitch: access token refreshed")

    async def helix(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        assert self._http is not None
        for attempt in range(2):
            async with self._http.request(method, f"{self.cfg.api_url}{path}", headers=self._headers(), **kw) as resp:
                if resp.status == 401 and attempt == 0:
                    await self._refresh()
                    continue
                body = await resp.json(content_type=None) if resp.content_length != 0 else {}
                if resp.status >= 500:
                    raise ConnectionError(f"Twitch {method} {path}: {resp.status}")  # transient: retried with backoff
                if resp.status >= 400:
                    raise TwitchError(f"Twitch {method} {path}: {resp.status} {body.get('message', '') if isinstance(body, dict) else ''}")
                return body if isinstance(body, dict) else {}
        raise TwitchError("Twitch kept refusing the refreshed token")

    async def send_chat(self, text: str) -> None:
        await self.helix("POST", "/chat/messages", json={"broadcaster_id": self.broadcaster_id, "sender_id": self.bot_id, "message": text[:500]})

    # -- EventSub ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """One connection: returns when ``stop`` is set, raises when it drops (the supervisor reconnects, its delay
        starting again once Twitch welcomed us). A move Twitch asks for (session_reconnect) is followed here."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            if not self.bot_id:
                await self._resolve_ids()
            url: str | None = f"{self.cfg.eventsub_url}?keepalive_timeout_seconds={self.keepalive}"
            moving = False
            while url is not None and not stop.is_set():
                url = await self._session(url, stop, moving)
                moving = True
        except TwitchError as exc:
            self._tokens = None  # a `companion stream twitch-login` before the next try counts
            raise RetryLater(str(exc), delay=60.0) from None  # the user must act; asked again every minute
        finally:
            self.connected.clear()
            await self._http.close()

    async def _resolve_ids(self) -> None:
        me = await self.helix("GET", "/users")
        self.bot_id = me["data"][0]["id"]
        if self.cfg.channel:
            them = await self.helix("GET", "/users", params={"login": self.cfg.channel})
            if not them.get("data"):
                raise TwitchError(f"no Twitch channel named {self.cfg.channel!r}")
            self.broadcaster_id = them["data"][0]["id"]
        else:
            self.broadcaster_id = self.bot_id

    async def _session(self, url: str, stop: asyncio.Event, moving: bool) -> str | None:
        """One websocket session; returns a reconnect URL when Twitch asks us to move (None when stopped)."""
        assert self._http is not None
        async with self._http.ws_connect(url, heartbeat=None) as ws:
            timeout = self.keepalive + 5
            stopper = asyncio.ensure_future(stop.wait())
            try:
                return await self._read(ws, url, stopper, timeout, moving)
            finally:
                stopper.cancel()

    async def _read(self, ws: Any, url: str, stopper: asyncio.Future[Any], timeout: float, moving: bool) -> str | None:
        while True:
            receiving = asyncio.ensure_future(ws.receive())
            done, _ = await asyncio.wait({receiving, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if receiving not in done:
                receiving.cancel()
                if stopper in done:
                    return None
                raise ConnectionError("no keepalive from Twitch")
            msg = receiving.result()
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                raise ConnectionError(f"websocket closed ({ws.close_code})")
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            kind = frame.get("metadata", {}).get("message_type")
            payload = frame.get("payload", {})
            if kind == "session_welcome":
                session = payload["session"]
                timeout = int(session.get("keepalive_timeout_seconds") or self.keepalive) + 5
                self.session_id = session["id"]
                if not moving:  # after session_reconnect the subscriptions move with the session
                    await self._subscribe()
                self.connected.set()
                self.on_status("connected", f"EventSub session for {self.cfg.channel or 'the bot account'}")
            elif kind == "notification":
                message = self._to_message(payload.get("subscription", {}).get("type", ""), payload.get("event", {}))
                if message is not None:
                    result = self.on_message(message)
                    if asyncio.iscoroutine(result):
                        await result
            elif kind == "session_reconnect":
                log.info("twitch: moving to a new EventSub connection")
                return payload["session"]["reconnect_url"]
            elif kind == "revocation":
                log.warning("twitch: subscription %s revoked (%s)", payload.get("subscription", {}).get("type"),
                            payload.get("subscription", {}).get("status"))

    async def _subscribe(self) -> None:
        self.subscribed = []
        for kind, version, cond in SUBSCRIPTIONS:
            condition = {"broadcaster_user_id": self.broadcaster_id}
            if cond == "chat":
                condition["user_id"] = self.bot_id
            elif cond == "mod":
                condition["moderator_user_id"] = self.bot_id
            elif cond == "to":
                condition = {"to_broadcaster_user_id": self.broadcaster_id}
            body = {"type": kind, "version": version, "condition": condition, "transport": {"method": "websocket", "session_id": self.session_id}}
            try:
                await self.helix("POST", "/eventsub/subscriptions", json=body)
                self.subscribed.append(kind)
            except TwitchError as exc:
                level = logging.ERROR if kind == "channel.chat.message" else logging.INFO
                log.log(level, "twitch: no %s events: %s", kind, exc)
        log.info("twitch: subscribed to %s", ", ".join(self.subscribed))

    def _to_message(self, kind: str, e: dict[str, Any]) -> ChatMessage | None:
        name = e.get("user_name") or e.get("chatter_user_name") or e.get("user_login") or "someone"
        uid = str(e.get("user_id") or e.get("chatter_user_id") or "anonymous")
        if kind == "channel.chat.message":
            if str(e.get("chatter_user_id")) == self.bot_id:
                return None  # our own replies
            message = e.get("message", {})
            mentions = any(f.get("type") == "mention" and str(f.get("mention", {}).get("user_id")) == self.bot_id for f in message.get("fragments", []))
            bits = float((e.get("cheer") or {}).get("bits", 0))
            return ChatMessage("twitch", uid, name, message.get("text", ""), "cheer" if bits else "chat", bits, mentions)
        if kind == "channel.follow":
            return ChatMessage("twitch", uid, name, "", "follow")
        if kind == "channel.subscribe":
            return None if e.get("is_gift") else ChatMessage("twitch", uid, name, "", "sub", 1)
        if kind == "channel.subscription.gift":
            return ChatMessage("twitch", uid, name, "", "gift", float(e.get("total", 1)))
        if kind == "channel.cheer":
            return ChatMessage("twitch", uid, name if not e.get("is_anonymous") else "someone", e.get("message", ""), "cheer", float(e.get("bits", 0)))
        if kind == "channel.raid":
            raider = e.get("from_broadcaster_user_name", "a streamer")
            return ChatMessage("twitch", str(e.get("from_broadcaster_user_id")), raider, "", "raid", float(e.get("viewers", 0)))
        if kind == "channel.channel_points_custom_reward_redemption.add":
            title = (e.get("reward") or {}).get("title", "a reward")
            return ChatMessage("twitch", uid, name, f"{title}: {e.get('user_input', '')}".strip(": "), "redeem", 1)
        return None
