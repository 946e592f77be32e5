"""Finding model servers already running on this machine: Ollama, LM Studio, or a URL the user gives."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp

from companion.init.choose import ModelInfo, Server

__all__ = ["ollama_url", "probe_ollama", "probe_openai", "detect_servers", "total_memory_bytes"]

LM_STUDIO_URL = "http://127.0.0.1:1234/v1"


def ollama_url() -> str:
    """Ollama's address: OLLAMA_HOST as Ollama itself reads it ("host", "host:port" or a URL), else 127.0.0.1:11434."""
    raw = os.environ.get("OLLAMA_HOST", "").strip()
    if not raw:
        return "http://127.0.0.1:11434"
    if "://" not in raw:
        raw = "http://" + raw
    scheme, rest = raw.split("://", 1)
    host = rest.rstrip("/")
    if ":" not in host.rsplit("]", 1)[-1]:
        host += ":11434"
    if host.startswith("0.0.0.0"):
        host = "127.0.0.1" + host[len("0.0.0.0"):]  # a listen-everywhere address is reached on loopback
    return f"{scheme}://{host}"


async def _get_json(http: aiohttp.ClientSession, url: str, timeout: float) -> Any:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        if resp.status >= 400:
            raise aiohttp.ClientResponseError(resp.request_info, resp.history, status=resp.status)
        return await resp.json(content_type=None)


async def probe_ollama(http: aiohttp.ClientSession, timeout: float = 1.5) -> Server | None:
    """Ollama's models from /api/tags (with sizes), served OpenAI-style under /v1."""
    base = ollama_url()
    try:
        body = await _get_json(http, f"{base}/api/tags", timeout)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError):
        return None
    models = []
    listed = body.get("models") if isinstance(body, dict) else None
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            found_details = item.get("details")
            details: dict[str, Any] = found_details if isinstance(found_details, dict) else {}
            found = item.get("size")
            size = found if isinstance(found, int) else None
            models.append(ModelInfo(item["name"], size, str(details.get("parameter_size") or "")))
    return Server("ollama", f"Ollama at {base}", f"{base}/v1", models)


async def probe_openai(http: aiohttp.ClientSession, base_url: str, kind: str = "openai", label: str = "", timeout: float = 1.5) -> Server | None:
    """Any OpenAI-compatible server (LM Studio, llama.cpp's server, vLLM) through GET /models."""
    base = base_url.rstrip("/")
    if not base.endswith("/v1"):
        base += "/v1"
    try:
        body = await _get_json(http, f"{base}/models", timeout)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, OSError):
        return None
    listed = body.get("data") if isinstance(body, dict) else None
    models = [
        ModelInfo(item["id"]) for item in (listed if isinstance(listed, list) else [])
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]
    return Server(kind, label or f"server at {base}", base, models)


async def detect_servers(extra_url: str | None = None, timeout: float = 1.5) -> list[Server]:
    """Every server that answers: Ollama, LM Studio, and ``extra_url`` when given (all probed at once)."""
    async with aiohttp.ClientSession() as http:
        probes = [probe_ollama(http, timeout), probe_openai(http, LM_STUDIO_URL, "lmstudio", "LM Studio at 127.0.0.1:1234", timeout)]
        if extra_url:
            probes.append(probe_openai(http, extra_url, "openai", "", timeout))
        found = await asyncio.gather(*probes)
    return [s for s in found if s is not None]


def total_memory_bytes() -> int | None:
    """The machine's RAM (a model server runs on it too; VRAM, where there is a GPU, is usually smaller)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
