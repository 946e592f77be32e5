"""YouTube live chat through the official Data API v3 (read-only, with an API key).

``videos.list`` gives the live chat id; ``liveChatMessages.list`` is polled
with ``pageToken``, waiting ``pollingIntervalMillis`` between calls as the API
asks. Each poll costs 5 quota units (the default quota is 10,000 a day, so
about 2,000 polls: at the usual 5-10 s interval that is roughly 3-5 hours of
stream; ask Google for more for longer streams). Super Chats and Super Stickers
become paid messages; the first page (the backlog before we joined) is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from companion.runtime.supervisor import RetryLater
from companion.stream.message import ChatMessage

if TYPE_CHECKING:
    from companion.config import YouTubeSection

log = logging.getLogger(__name__)

__all__ = ["YouTubeChat", "YouTubeError"]


class YouTubeError(Exception):
    """YouTube refused or the stream has no live chat; the message says what to do."""


class YouTubeChat:
    name = "youtube"
    first_delay = 2.0  # each poll costs quota: a failing API is not asked every second

    def __init__(
        self, cfg: "YouTubeSection", on_message: Callable[[ChatMessage], Any], *, min_interval: float = 1.0,
        on_status: Callable[[str, str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_status = on_status or (lambda state, detail: None)  # "connected" resets the supervisor's delay
        self.on_message = on_message
        self.min_interval = min_interval
        self.chat_id = ""
        self.polls = 0
        self.connected = asyncio.Event()

    def _key(self) -> str:
        key = os.environ.get(self.cfg.api_key_env, "")
        if not key:
            raise YouTubeError(f"no YouTube API key: set {self.cfg.api_key_env} (see README, YouTube)")
        return key

    async def _get(self, http: aiohttp.ClientSession, path: str, params: dict[str, str]) -> dict[str, Any]:
        async with http.get(f"{self.cfg.api_url}{path}", params={**params, "key": self._key()}) as resp:
            body = await resp.json(content_type=None)
            if resp.status == 403 and "quota" in str(body).lower():
                raise YouTubeError("the YouTube API quota for today is used up (each poll costs 5 units)")
            if resp.status >= 500:
                raise ConnectionError(f"YouTube answered {resp.status}")  # transient: retried with backoff
            if resp.status >= 400:
                message = (body.get("error") or {}).get("message", "") if isinstance(body, dict) else ""
                raise YouTubeError(f"YouTube {path}: {resp.status} {message}")
            return body

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set or the stream ends; raises when YouTube cannot be reached (the supervisor
        retries, its delay starting again after the first poll that worked)."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                await self._poll_loop(http, stop)
        except YouTubeError as exc:
            raise RetryLater(str(exc), delay=300.0) from None  # a key, a quota or a stream that is not live yet
        finally:
            self.connected.clear()

    async def _poll_loop(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        if not self.chat_id:
            videos = await self._get(http, "/videos", {"part": "liveStreamingDetails", "id": self.cfg.video_id})
            items = videos.get("items") or []
            chat_id = items[0].get("liveStreamingDetails", {}).get("activeLiveChatId") if items else None
            if not chat_id:
                raise YouTubeError(f"video {self.cfg.video_id!r} has no active live chat (is the stream live?)")
            self.chat_id = chat_id
        page = ""
        first = True
        while not stop.is_set():
            params = {"liveChatId": self.chat_id, "part": "snippet,authorDetails", "maxResults": "2000"}
            if page:
                params["pageToken"] = page
            body = await self._get(http, "/liveChat/messages", params)
            self.polls += 1
            if not self.connected.is_set():
                self.connected.set()
                self.on_status("connected", f"live chat of video {self.cfg.video_id}")
            page = body.get("nextPageToken", page)
            if not first:  # the first page is the backlog from before we joined
                for item in body.get("items", []):
                    message = _to_message(item)
                    if message is not None:
                        result = self.on_message(message)
                        if asyncio.iscoroutine(result):
                            await result
            first = False
            if body.get("offlineAt"):
                log.info("youtube: the stream ended")
                return
            wait = max(self.min_interval, float(body.get("pollingIntervalMillis", 5000)) / 1000)
            try:
                await asyncio.wait_for(stop.wait(), wait)
            except TimeoutError:
                pass


def _to_message(item: dict[str, Any]) -> ChatMessage | None:
    snippet = item.get("snippet", {})
    author = item.get("authorDetails", {})
    kind = snippet.get("type", "textMessageEvent")
    uid, name = str(author.get("channelId", "")), author.get("displayName", "someone")
    if kind == "textMessageEvent":
        return ChatMessage("youtube", uid, name, snippet.get("displayMessage", ""))
    if kind == "superChatEvent":
        details = snippet.get("superChatDetails", {})
        amount = float(details.get("amountMicros", 0)) / 1e6
        return ChatMessage("youtube", uid, name, details.get("userComment", ""), "superchat", amount)
    if kind == "superStickerEvent":
        details = snippet.get("superStickerDetails", {})
        return ChatMessage("youtube", uid, name, "(super sticker)", "superchat", float(details.get("amountMicros", 0)) / 1e6)
    if kind in ("newSponsorEvent", "memberMilestoneChatEvent"):
        return ChatMessage("youtube", uid, name, snippet.get("displayMessage", ""), "sub", 1)
    return None
