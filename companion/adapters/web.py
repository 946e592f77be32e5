"""The minimal web chat: one page and one websocket, served by the companion itself.

Every route and websocket message is documented in docs/protocol.md (keep it
in step with this file): /ws (chat and voice), /events (overlays), /health,
and the JSON API under /api/ used by /control.
Security: loopback by default; with a token (required off loopback) every HTTP
and websocket request must carry it (``?token=`` or ``Authorization: Bearer``);
the websocket Origin must match the page's host, so another site open in the
same browser cannot talk to the companion.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from aiohttp import WSMsgType, web

from companion.adapters.listener import BoundedRunner, bound_port
from companion.adapters.web_avatar import AvatarFeed
from companion.adapters.web_guard import SECURITY_HEADERS, refusal
from companion.adapters.web_settings import SettingsAPI
from companion.config import Settings, is_loopback
from companion.config.masking import mask
from companion.core.engine import Companion
from companion.core.turn import TurnResult
from companion.runtime import safejson
from companion.runtime.events import AdapterStatus, Announcement, SentenceReady, TurnEnded
from companion.runtime.resources import bundled
from companion.runtime.supervisor import normal_state
from companion.runtime.tasks import spawn
from companion.text.chunking import Sentence
from companion.voice.build import VoiceModels

if TYPE_CHECKING:
    from companion.group.cast import Cast

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 64 * 1024
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


class WebChat:
    """Serves the chat page and websocket for one Companion."""

    def __init__(
        self, companion: Companion, settings: Settings, *, web_root: Path | None = None, voice_models: VoiceModels | None = None,
        cast: Cast | None = None,
    ) -> None:
        self.companion = companion
        self.cast = cast  # [[characters]]: the page's messages are answered by the group, each line with its name
        self.settings = settings
        self.web_root = web_root or bundled("web")
        self._settings_api = SettingsAPI(companion, settings)
        self.avatar = AvatarFeed(companion, settings, self._broadcast, lambda: len(self._event_sockets), group=cast is not None)
        self.token = settings.web_token()
        self._runner: BoundedRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._conversation_of: dict[web.WebSocketResponse, str] = {}
        self._unsubscribe: Any = None
        self._event_sockets: set[web.WebSocketResponse] = set()
        self._undo_events: list[Any] = []
        self.muted = False
        self._voices: dict[web.WebSocketResponse, Any] = {}
        self._own_models = voice_models is None  # shared models are closed by whoever made them
        self.voice_models = voice_models or VoiceModels(settings)
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=MAX_FRAME_BYTES)
        app.on_response_prepare.append(_security_headers)
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/health", self._health)
        app.router.add_get("/overlay", self._page("overlay.html"))
        app.router.add_get("/avatar", self._page("avatar.html"))
        app.router.add_get("/pet", self._page("pet.html"))
        app.router.add_get("/api/avatar", self.avatar.config)
        app.router.add_get("/avatar-files/{name}", self.avatar.file)
        app.router.add_get("/control", self._page("control.html"))
        app.router.add_get("/events", self._events_ws)
        app.router.add_get("/api/status", self._api_status)
        app.router.add_get("/api/memories", self._api_memories)
        app.router.add_delete("/api/memories/{id}", self._api_forget)
        app.router.add_post("/api/stop", self._api_stop)
        app.router.add_post("/api/mute", self._api_mute)
        app.router.add_post("/api/say", self._api_say)
        app.router.add_post("/api/persona", self._api_persona)
        app.router.add_get("/api/settings", self._settings_api.get)
        app.router.add_post("/api/settings", self._api_settings)
        app.router.add_get("/api/models", self._settings_api.models)
        app.router.add_get("/api/models/pull", self._settings_api.pull_status)
        app.router.add_post("/api/models/pull", self._api_models_pull)
        app.router.add_static("/static/", self.web_root, show_index=False)
        return app

    def _caption(self, event: SentenceReady) -> None:
        """What she says now, for the overlay (OBS) and the avatar pages; in a group, with who says it."""
        caption: dict[str, Any] = {"type": "caption", "text": event.text}
        if self.cast is not None:
            caption["character"] = self.avatar.character
        self._broadcast(caption)

    def _announce(self, event: Announcement) -> None:
        """Reminders and timers reach the browsers showing that conversation."""
        for ws, conversation in list(self._conversation_of.items()):
            if conversation == event.conversation_id and not ws.closed:
                spawn(self._send(ws, {"type": "announcement", "text": event.text}), "web-announce")

    async def start(self) -> None:
        self._unsubscribe = self.companion.bus.subscribe(Announcement, self._announce)
        from companion.stream.chat import ChatAnswering

        bus = self.companion.bus
        self._undo_events = [
            bus.subscribe(SentenceReady, self._caption),
            bus.subscribe(TurnEnded, lambda e: self._broadcast({"type": "turn_end", "interrupted": e.interrupted})),
            bus.subscribe(ChatAnswering, lambda e: self._broadcast({"type": "answering", "user": e.user_name, "text": e.text, "platform": e.platform})),
            bus.subscribe(AdapterStatus, self._on_status),
        ]
        self.avatar.start()
        cfg = self.settings.web
        self._runner = BoundedRunner(
            self.app(), max_connections=cfg.max_connections, header_timeout=cfg.header_timeout, shutdown_timeout=0.25
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port)
        await site.start()
        self.port = bound_port(self._runner, cfg.port)
        log.info("web chat on http://%s:%s/", "127.0.0.1" if cfg.host == "0.0.0.0" else cfg.host, self.port)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for undo in self._undo_events:
            undo()
        await self.avatar.stop()
        for voice in list(self._voices.values()):
            await voice.close()
        if self._own_models:
            await self.voice_models.close()
        # Every page at once, each given a moment to answer the close: shutdown has two seconds in all.
        sockets = [*self._event_sockets, *self._sockets]
        if sockets:
            await asyncio.wait(
                [asyncio.ensure_future(ws.close(code=1001, message=b"server shutting down")) for ws in sockets], timeout=0.3
            )
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- HTTP -----------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        problem = refusal(
            method=request.method,
            host=request.headers.get("Host", ""),
            origin=request.headers.get("Origin"),
            content_type=request.headers.get("Content-Type", ""),
            websocket=request.headers.get("Upgrade", "").lower() == "websocket",
            bind_host=self.settings.web.host,
            allowed_hosts=self.settings.web.allowed_hosts,
            token_mode=bool(self.token),
        )
        if problem is not None:
            return web.json_response({"error": problem}, status=403)
        if self.token and not (request.method == "GET" and request.path.startswith("/static/")):
            # (The pages' own scripts hold no secret; the page and every API and socket need the token.)
            given = request.query.get("token") or ""
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                given = auth[7:]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.json_response(
                    {"error": "missing or wrong token: open the page as http://HOST:PORT/?token=YOUR_TOKEN"}, status=401
                )
        response = await handler(request)
        if isinstance(response, web.Response) and response.content_type == "application/json" and isinstance(response.body, bytes):
            # One secret rule for every answer: a server's error that echoes our API key reaches no page.
            masked = mask(response.text or "")
            if masked != response.text:
                response.text = masked
        return response

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(self.web_root / "index.html", headers={"Cache-Control": "no-store"})

    async def _health(self, request: web.Request) -> web.Response:
        """Each adapter's state, last error and uptime; "degraded" while any is retrying or failed."""
        llm: dict[str, str] = {"provider": self.companion.llm.name}
        devices = getattr(self.companion.llm, "devices", None)  # a local model: which GPU (or the CPU) runs it
        if isinstance(devices, str):
            llm["devices"] = devices
        return web.json_response({**self.companion.health.report(), "character": self.companion.character.name, "llm": llm})

    # -- websocket --------------------------------------------------------------

    def _origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser (scripts, tests); the token still applies
        return urlparse(origin).netloc == request.host

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            return web.json_response({"error": "cross-origin websocket refused"}, status=403)
        session = request.query.get("session", "default")
        if not _SESSION_RE.match(session):
            return web.json_response({"error": "session must be 1-64 letters, digits, '-' or '_'"}, status=400)
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=30)
        await ws.prepare(request)
        self._sockets.add(ws)
        conversation = f"web:{session}"
        self._conversation_of[ws] = conversation
        replying: asyncio.Task[None] | None = None
        try:
            await self._send(ws, await self._hello(conversation))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = _parse(msg.data)
                    if data is None:
                        await self._send(ws, {"type": "error", "message": "expected a JSON object with a 'type' field"})
                        continue
                    kind = data.get("type")
                    if kind == "chat":
                        text = data.get("text")
                        if not isinstance(text, str) or not text.strip():
                            await self._send(ws, {"type": "error", "message": "chat needs a non-empty 'text'"})
                        elif len(text) > self.settings.web.max_message_chars:
                            await self._send(
                                ws,
                                {"type": "error", "message": f"message too long (max {self.settings.web.max_message_chars} characters)"},
                            )
                        elif replying is not None and not replying.done():
                            await self._send(ws, {"type": "error", "message": "still answering; send 'stop' first"})
                        else:
                            replying = asyncio.create_task(self._reply(ws, conversation, text.strip()))
                    elif kind == "stop":
                        self.companion.interrupt(conversation)
                        if self.cast is not None:
                            self.cast.interrupt(conversation)
                        if ws in self._voices:
                            self._voices[ws].stop_reply()
                    elif kind == "voice_start":
                        voice = await self._voice_for(ws, conversation)
                        if voice is not None:
                            voice.processing = browser_processing(data.get("processing"))
                    elif kind == "voice_end":
                        if ws in self._voices:
                            self._voices[ws].end_of_speech()
                    elif kind == "mute":
                        voice = self._voices.get(ws)
                        if voice is not None:
                            voice.muted = bool(data.get("on"))
                    else:
                        await self._send(ws, {"type": "error", "message": f"unknown message type {kind!r}"})
                elif msg.type == WSMsgType.BINARY:
                    voice = self._voices.get(ws)
                    if voice is None:
                        await self._send(ws, {"type": "error", "message": 'send {"type": "voice_start"} before microphone audio'})
                    else:
                        voice.feed(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    log.info("web socket closed with error: %s", ws.exception())
        finally:
            if replying is not None and not replying.done():
                self.companion.interrupt(conversation)
                await asyncio.gather(replying, return_exceptions=True)
            self._sockets.discard(ws)
            self._conversation_of.pop(ws, None)
            voice = self._voices.pop(ws, None)
            if voice is not None:
                await voice.close()
        return ws

    async def _voice_for(self, ws: web.WebSocketResponse, conversation: str) -> Any:
        """The socket's voice session, started on first use; None (and an error to the page) when voice is unavailable."""
        voice = self._voices.get(ws)
        if voice is not None:
            return voice
        from companion.adapters.web_voice import BrowserVoice
        from companion.voice.errors import VoiceError

        async def send_bytes(data: bytes) -> None:
            if not ws.closed:
                try:
                    await ws.send_bytes(data)
                except (ConnectionError, RuntimeError):
                    pass

        voice = BrowserVoice(
            self.companion, self.settings, self.voice_models, conversation, lambda m: self._send(ws, m), send_bytes, cast=self.cast,
        )
        self._voices[ws] = voice
        try:
            await voice.start()
        except (VoiceError, ImportError) as exc:
            self._voices.pop(ws, None)
            await self._send(ws, {"type": "error", "message": f"voice is unavailable: {exc}"})
            return None
        voice.muted = self.muted
        return voice

    def browser_processing_report(self) -> list[dict[str, bool]]:
        """What each open page's microphone has from the browser (echo cancellation, noise suppression, gain)."""
        return [dict(v.processing) for v in self._voices.values() if getattr(v, "processing", None)]

    # -- overlay / control ------------------------------------------------------------

    def _page(self, name: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.FileResponse(self.web_root / name, headers={"Cache-Control": "no-store"})

        return handler

    def _broadcast(self, data: dict[str, Any]) -> None:
        for ws in list(self._event_sockets):
            spawn(self._send(ws, data), "web-broadcast")

    def _on_status(self, event: AdapterStatus) -> None:
        self._broadcast({"type": "status", "name": event.name, "state": normal_state(event.state), "detail": mask(event.detail)})

    async def _events_ws(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            return web.json_response({"error": "cross-origin websocket refused"}, status=403)
        ws = web.WebSocketResponse(max_msg_size=4096, heartbeat=30)
        await ws.prepare(request)
        self._event_sockets.add(ws)
        try:
            async for _ in ws:  # read-only: anything sent is ignored
                pass
        finally:
            self._event_sockets.discard(ws)
        return ws

    async def _api_status(self, request: web.Request) -> web.Response:
        return web.json_response({
            "character": self.companion.character.name,
            "llm": self.companion.llm.name,
            "speaking": self.companion.is_speaking(),
            "muted": self.muted,
            "memory": self.companion.memory is not None,
            "adapters": self.companion.health.report()["adapters"],  # the same board as /health
            "browser_microphones": self.browser_processing_report(),  # the browser's echo cancellation, per open page
        })

    async def _api_memories(self, request: web.Request) -> web.Response:
        memory = self.companion.memory
        if memory is None:
            return web.json_response({"error": "long-term memory is off ([memory] enabled = false)"}, status=404)
        query, speaker = request.query.get("q", ""), request.query.get("speaker", "")
        person = await memory.store.person_for(speaker) if speaker else None
        if query:
            vector = (await memory.embedder.embed([query]))[0]
            people = [person] if person else sorted({m.person_id for m in await memory.store.list(None, limit=1000)})
            found = [r.memory for r in await memory.store.recall(people, vector, k=20, refresh=False)]
        else:
            found = await memory.store.list(person, limit=100)
        return web.json_response([{"id": m.id, "person": m.person_id, "kind": m.kind, "content": m.content, "importance": m.importance} for m in found])

    async def _api_forget(self, request: web.Request) -> web.Response:
        memory = self.companion.memory
        try:
            memory_id = int(request.match_info["id"])
        except ValueError:
            return web.json_response({"error": "memory id must be a number"}, status=400)
        if memory is None:
            return web.json_response({"error": "long-term memory is off"}, status=404)
        removed = await memory.store.forget([memory_id])
        return web.json_response({"forgotten": removed}, status=200 if removed else 404)

    async def _api_stop(self, request: web.Request) -> web.Response:
        stopped = self.companion.interrupt_all()
        if self.cast is not None and self.cast.interrupt():
            stopped = stopped or ["group"]
        for voice in self._voices.values():
            voice.stop_reply()
        return web.json_response({"stopped": stopped})

    async def _json_body(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = safejson.loads(await request.read())
        except safejson.JSONInputError:
            return None
        return body if isinstance(body, dict) else None

    async def _api_mute(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if body is None or not isinstance(body.get("on"), bool):
            return web.json_response({"error": 'send {"on": true} or {"on": false}'}, status=400)
        self.muted = body["on"]
        for voice in self._voices.values():
            voice.muted = self.muted
            if self.muted:
                voice.stop_reply()
        return web.json_response({"muted": self.muted})

    async def _api_say(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        text = body.get("text") if body else None
        if body is None or not isinstance(text, str) or not text.strip() or len(text) > self.settings.web.max_message_chars:
            return web.json_response({"error": "send {\"text\": \"...\"} (non-empty, not too long)"}, status=400)
        conversation = str(body.get("conversation") or "web:control")
        if not conversation.startswith("web:") or not _SESSION_RE.match(conversation[4:]):
            return web.json_response({"error": "conversation must be web:NAME (1-64 letters, digits, '-' or '_')"}, status=400)
        # Its own speaker unless the user chose otherwise: a page that got past the checks still cannot use
        # owner-only tools. As the owner, the line is theirs: their name, their memories, their tools.
        as_owner = self.settings.web.say_as_owner
        result = await self.companion.respond(
            text.strip(), conversation_id=conversation, speaker_id="local" if as_owner else "web:control",
            speaker_name=(self.settings.owner_display_name() if as_owner else None) or self.settings.companion.user_name,
            platform="web",
        )
        return web.json_response({"reply": result.reply, "error": result.error})

    async def _api_settings(self, request: web.Request) -> web.Response:
        return await self._settings_api.post(request, await self._json_body(request))

    async def _api_models_pull(self, request: web.Request) -> web.Response:
        return await self._settings_api.pull(request, await self._json_body(request))

    async def _api_persona(self, request: web.Request) -> web.Response:
        from companion.character.persona import CardError, load_character, resolve_imported

        body = await self._json_body(request)
        card = body.get("card") if body else None
        if not isinstance(card, str):
            return web.json_response({"error": 'send {"card": "name of an imported character"}'}, status=400)
        try:
            # Imported characters only (importing a file stays a CLI action of the owner), read off the loop.
            path = resolve_imported(card, self.settings.data_path() / "personas")
            character = await asyncio.to_thread(load_character, path)
        except CardError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.companion.character = character
        return web.json_response({"character": character.name})

    def _owner_name(self) -> str | None:
        """The page on this PC is its owner's: called by name. Reached over the network (a token), it is anyone."""
        return self.settings.owner_display_name() if is_loopback(self.settings.web.host) else None

    async def _hello(self, conversation: str) -> dict[str, Any]:
        recent = await self.companion.history.recent(conversation, 50)
        return {
            "type": "hello",
            "character": " & ".join(self.cast.names) if self.cast is not None else self.companion.character.name,
            "characters": self.cast.names if self.cast is not None else [self.companion.character.name],
            "host": self.companion.character.name,
            "greeting": self.companion.greeting(self._owner_name(), conversation_id=conversation),
            "history": [
                {"role": m.role, "text": m.content, "name": m.speaker_name} for m in recent if m.role in ("user", "assistant")
            ],
        }

    async def _reply(self, ws: web.WebSocketResponse, conversation: str, text: str) -> None:
        turn = {"id": ""}  # the reply streaming now (in a group, one after another)

        async def on_token(chunk: str) -> None:
            await self._send(ws, {"type": "token", "turn_id": turn["id"], "text": chunk})

        async def on_sentence(sentence: Sentence) -> None:
            await self._send(
                ws,
                {
                    "type": "sentence",
                    "turn_id": turn["id"],
                    "index": sentence.index,
                    "text": sentence.text,
                    "emotions": list(sentence.emotions),
                },
            )

        async def on_start(character: str, handle: Any) -> None:
            turn["id"] = handle.id
            await self._send(ws, {"type": "turn_start", "turn_id": handle.id, "character": character})

        async def on_end(character: str, result: TurnResult) -> None:
            await self._send(ws, {
                "type": "turn_end", "turn_id": result.turn_id, "character": character, "reply": result.reply,
                "emotions": result.emotions, "interrupted": result.interrupted, "error": result.error, "timings": result.timings_ms,
            })

        options: dict[str, Any] = {
            "conversation_id": conversation, "speaker_id": "web", "speaker_name": self._owner_name(), "platform": "web",
            "on_token": on_token, "on_sentence": on_sentence,
        }
        try:
            if self.cast is not None:
                await self.cast.respond(text, on_start=on_start, on_line=lambda line: on_end(line.character, line.result), **options)
                return
            handle = self.companion.reply(text, **options)
            await on_start(self.companion.character.name, handle)
            result = await handle.wait()
        except Exception as exc:  # keep the socket alive whatever happens in a turn
            log.exception("web turn failed")
            await self._send(ws, {"type": "error", "message": f"the reply failed: {exc}"})
            return
        await on_end(self.companion.character.name, result)

    @staticmethod
    async def _send(ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if ws.closed:
            return
        try:
            await ws.send_str(mask(json.dumps(data)))
        except (ConnectionError, RuntimeError):
            pass  # the browser went away; the turn still completes and is stored


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        data = safejson.loads(raw)
    except safejson.JSONInputError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("type"), str) else None


def browser_processing(reported: Any) -> dict[str, bool]:
    """The audio processing a page reports its browser applies to the microphone; said once per page when echo
    cancellation is missing (she may then hear herself through that page's speakers)."""
    keys = ("echoCancellation", "noiseSuppression", "autoGainControl")
    got = {k: bool(reported.get(k)) for k in keys} if isinstance(reported, dict) else {}
    if got and not got["echoCancellation"]:
        log.warning("web: this browser gives the microphone no echo cancellation; use headphones on that page")
    return got
