"""Local stand-ins for external servers: a real HTTP server speaking the OpenAI API."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    """Run a stand-in server on loopback (a free port, or ``port`` to come back where it was): (runner, port)."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # noqa: SLF001


@dataclass
class FakeOpenAI:
    """An OpenAI-compatible chat completions server with scriptable failures.

    Each request takes the next mode from ``modes`` (default "ok"):
    ok | tools | 500 | 429 | 401 | 401-echo (repeats the API key) | drop (closes mid-stream) | hang (never answers).
    """

    reply: str = "[happy] Hello there! It is lovely to see you again, friend. How was your day?"
    token_delay: float = 0.0
    modes: deque[str] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    models: list[str] = field(default_factory=lambda: ["test-model"])
    model_sizes: dict[str, int] = field(default_factory=dict)  # bytes, as Ollama's /api/tags reports them
    # answer to memory-extraction requests (those asking for the "memories" JSON schema)
    extraction_reply: str = '{"facts": []}'
    extraction_delay: float = 0.0  # seconds before answering an extraction request (a slow local model)
    embeddings: list[list[float]] | None = None
    tool_name: str = "get_weather"  # the call "tools" mode makes
    tool_args: str = '{"city": "Paris"}'
    transcription: str = "What is the weather like in Paris?"  # answer of /v1/audio/transcriptions
    speech: bytes = b""  # body of /v1/audio/speech (raw 24 kHz PCM, or a WAV)
    audio_requests: list[dict[str, Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> "FakeOpenAI":
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/api/tags", self._ollama_tags)  # Ollama's own model list (with sizes)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        self._runner, self.port = await serve(app, self.port)  # a restart comes back on the same port
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _stream_text(self, request: web.Request, body: dict[str, Any], text: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunk = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        done = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await resp.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        return resp

    async def _transcriptions(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form.get("file")
        audio = upload.file.read() if hasattr(upload, "file") else b""
        self.audio_requests.append({"path": "transcriptions", "model": form.get("model"), "bytes": len(audio), "wav": audio[:4] == b"RIFF"})
        return web.json_response({"text": self.transcription})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.audio_requests.append({"path": "speech", **body})
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        for i in range(0, len(self.speech), 4801):  # odd block size: samples split across chunks
            await resp.write(self.speech[i : i + 4801])
        return resp

    async def _ollama_tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [
            {"name": m, "size": self.model_sizes.get(m, 1_000_000_000), "details": {"parameter_size": ""}} for m in self.models
        ]})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        fmt = body.get("response_format") or {}
        if (fmt.get("json_schema") or {}).get("name") == "memories":
            await asyncio.sleep(self.extraction_delay)  # real time on purpose: a slow model behind a real socket
            return await self._stream_text(request, body, self.extraction_reply)
        mode = self.modes.popleft() if self.modes else "ok"
        if mode == "hang":
            await asyncio.Event().wait()  # never answers (the client gives up)
        if mode == "401-echo":  # a server that repeats the key it was given (some do)
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            return web.json_response({"error": {"message": f"Incorrect API key provided: {key}", "type": "auth"}}, status=401)
        if mode in ("500", "429", "401"):
            status = int(mode)
            return web.json_response({"error": {"message": f"simulated {status}", "type": "test"}}, status=status)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        async def send(obj: Any) -> None:
            await resp.write(f"data: {json.dumps(obj)}\n\n".encode())

        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": body.get("model", "")}
        await send({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        if mode == "tools":
            half = len(self.tool_args) // 2
            calls = [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": self.tool_name, "arguments": ""}},
                {"index": 0, "function": {"arguments": self.tool_args[:half]}},
                {"index": 0, "function": {"arguments": self.tool_args[half:]}},
            ]
            for call in calls:
                await send({**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
            await send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
            await resp.write(b"data: [DONE]\n\n")
            return resp
        words = self.reply.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            await send({**base, "choices": [{"index": 0, "delta": {"content": piece}}]})
            if mode == "drop" and i == 2:
                request.transport.close()  # the server dies mid-reply
                return resp
            if self.token_delay:
                await asyncio.sleep(self.token_delay)  # real time on purpose: tokens written while audio already plays
        await send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        await resp.write(b"data: [DONE]\n\n")
        return resp
