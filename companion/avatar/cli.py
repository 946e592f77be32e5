"""``companion avatar check``: connect, authenticate, list hotkeys and expressions, wiggle the mouth."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from companion.avatar.client import VTSClient
from companion.config import Settings


async def resolve_url(settings: Settings) -> str:
    cfg = settings.avatar
    if cfg.discover:
        from companion.avatar.discovery import discover

        port = await discover()
        if port is not None:
            return f"ws://127.0.0.1:{port}"
    return cfg.url


def token_path(settings: Settings) -> Any:
    return settings.data_path() / "vtube_studio_token"


async def avatar_check(settings: Settings) -> dict[str, Any]:
    cfg = settings.avatar
    client = VTSClient(await resolve_url(settings), token_path=token_path(settings), plugin_name=cfg.plugin_name, developer=cfg.developer)
    await client.connect()
    try:
        state = await client.request("APIStateRequest")
        hotkeys = await client.request("HotkeysInCurrentModelRequest", {})
        try:
            expressions = await client.request("ExpressionStateRequest", {"details": False})
        except Exception:  # noqa: BLE001 - older VTube Studio or no Live2D model: not fatal for a check
            expressions = {}
        start = time.perf_counter()
        frames = 0
        while (elapsed := time.perf_counter() - start) < 1.0:
            value = 0.5 + 0.5 * math.sin(elapsed * 2 * math.pi * 3)
            await client.request("InjectParameterDataRequest", {"faceFound": False, "mode": "set", "parameterValues": [{"id": "MouthOpen", "value": value}]})
            frames += 1
            await asyncio.sleep(1 / 30)
        await client.request("InjectParameterDataRequest", {"faceFound": False, "mode": "set", "parameterValues": [{"id": "MouthOpen", "value": 0.0}]})
        return {
            "url": client.url,
            "vtube_studio": state.get("vTubeStudioVersion"),
            "model": hotkeys.get("modelName"),
            "hotkeys": [{"name": h.get("name"), "id": h.get("hotkeyID"), "type": h.get("type")} for h in hotkeys.get("availableHotkeys", [])],
            "expressions": [e.get("file") for e in expressions.get("expressions", []) if isinstance(e, dict)],
            "mouth_frames": frames,
        }
    finally:
        await client.close()
