"""YouTube live chat polling against a local stand-in of the Data API."""

import asyncio

from aiohttp import web

from companion.config import YouTubeSection
from companion.stream.youtube import YouTubeChat
from companion.testing import supervised
from tests.fakes import serve
from tests.stream.fake_twitch import until


class FakeYouTube:
    def __init__(self) -> None:
        self.pages = [
            {"items": [{"snippet": {"type": "textMessageEvent", "displayMessage": "old backlog"}, "authorDetails": {"channelId": "c0", "displayName": "Old"}}]},
            {"items": [
                {"snippet": {"type": "textMessageEvent", "displayMessage": "hello Mika!"}, "authorDetails": {"channelId": "c1", "displayName": "Ann"}},
                {"snippet": {"type": "superChatEvent", "superChatDetails": {"amountMicros": "5000000", "userComment": "love the stream"}},
                 "authorDetails": {"channelId": "c2", "displayName": "Ben"}},
            ]},
            {"items": []},
        ]
        self.requests: list[dict[str, str]] = []
        self.fail_next = 0

    async def start(self):
        app = web.Application()
        app.router.add_get("/youtube/v3/videos", self._videos)
        app.router.add_get("/youtube/v3/liveChat/messages", self._messages)
        self.runner, self.port = await serve(app)
        return self

    async def _videos(self, request):
        return web.json_response({"items": [{"liveStreamingDetails": {"activeLiveChatId": "chat-1"}}]})

    async def _messages(self, request):
        self.requests.append(dict(request.query))
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": {"message": "backend error"}}, status=503)
        index = int(request.query.get("pageToken", "p0")[1:])
        page = self.pages[min(index, len(self.pages) - 1)]
        return web.json_response({**page, "nextPageToken": f"p{index + 1}", "pollingIntervalMillis": 50})


async def test_polls_with_page_tokens_and_turns_super_chats_into_paid_messages(tmp_path, monkeypatch):
    """The backlog is skipped, pageToken is followed, the interval honoured, super chats are paid; errors are retried."""
    monkeypatch.setenv("YOUTUBE_API_KEY", "k")
    server = await FakeYouTube().start()
    server.fail_next = 1  # a transient 503 first: retried after backoff
    got = []
    cfg = YouTubeSection(enabled=True, video_id="v1", api_url=f"http://127.0.0.1:{server.port}/youtube/v3")
    chat = YouTubeChat(cfg, got.append, min_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(supervised(chat, stop))
    await until(lambda: len(got) == 2, timeout=15)
    assert [(m.user_name, m.text, m.kind) for m in got] == [("Ann", "hello Mika!", "chat"), ("Ben", "love the stream", "superchat")]
    assert got[1].amount == 5.0
    await until(lambda: len(server.requests) >= 4)
    assert server.fail_next == 0 and server.requests[0].get("pageToken") is None  # the failed call
    assert server.requests[1].get("pageToken") is None and server.requests[2]["pageToken"] == "p1"
    assert all(r["liveChatId"] == "chat-1" and r["key"] == "k" for r in server.requests)
    stop.set()
    await task
    await server.runner.cleanup()
