"""The settings panel's API: switch the model among the servers found on this PC, voice, the character.

Owner only, under the same rules as the rest of the control API (Host, JSON,
same Origin; the token off loopback). Changes apply at once where they can (the
model, the character) and are saved to the config file the companion was
started with, so they survive a restart; voice devices start at the next run.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from companion.config import ConfigError, Settings, deep_merge, read_config_data, save_config
from companion.runtime.tasks import spawn
from companion.runtime.threads import run_in_daemon_thread

if TYPE_CHECKING:
    from companion.core.engine import Companion

__all__ = ["SettingsAPI"]

log = logging.getLogger(__name__)


class SettingsAPI:
    def __init__(self, companion: "Companion", settings: Settings) -> None:
        self.companion = companion
        self.settings = settings
        self._lock = asyncio.Lock()
        self.pull_state: dict[str, Any] = {"state": "idle"}
        self._pull_task: asyncio.Task[None] | None = None

    async def get(self, request: web.Request) -> web.Response:
        from companion.character.persona import imported_names
        from companion.init.choose import size_text
        from companion.init.detect import detect_servers

        servers = await detect_servers(timeout=1.0)
        llm = self.settings.llm
        return web.json_response({
            "llm": {"provider": llm.provider, "base_url": llm.openai.base_url if llm.provider == "openai" else "",
                    "model": llm.openai.model if llm.provider == "openai" else self.companion.llm.name},
            "servers": [{"kind": s.kind, "label": s.label, "base_url": s.base_url,
                         "models": [{"name": m.name, "size": size_text(m)} for m in s.models]} for s in servers],
            "voice": {"enabled": self.settings.voice.enabled},
            "character": self.companion.character.name,
            "characters": imported_names(self.settings.data_path() / "personas"),
            "config": str(self.settings.source) if self.settings.source else None,
        })

    async def post(self, request: web.Request, body: dict[str, Any] | None) -> web.Response:
        if not body or not set(body) <= {"llm", "voice", "character"}:
            return _bad(
                'send {"llm": {"base_url": "...", "model": "..."}}, {"llm": {"gguf": "NAME or path"}} or {"llm": "embedded"}, '
                '{"voice": {"enabled": true}}, {"character": "name"}'
            )
        async with self._lock:  # one change at a time: two tabs must not interleave file writes
            changes: dict[str, Any] = {}
            applied: list[str] = []
            if "llm" in body:
                llm = body["llm"]
                if llm == "embedded":
                    changes["llm"] = {"provider": "llamacpp", "llamacpp": {"model": "", "mmproj": ""}}
                elif isinstance(llm, dict) and isinstance(llm.get("gguf"), str):
                    # a model file on this machine: a pulled NAME, ORG/REPO:FILE, ollama:NAME:TAG or a path
                    from companion.models.hub import ModelError
                    from companion.models.local import resolve_local

                    try:
                        path, projector = await asyncio.to_thread(resolve_local, llm["gguf"])
                    except ModelError as exc:
                        return _bad(str(exc))
                    changes["llm"] = {"provider": "llamacpp", "llamacpp": {"model": str(path), "mmproj": str(projector or "")}}
                elif isinstance(llm, dict) and isinstance(llm.get("base_url"), str) and isinstance(llm.get("model"), str):
                    if not llm["base_url"].startswith(("http://", "https://")) or not llm["model"]:
                        return _bad("llm.base_url must be an http(s) URL and llm.model a model name")
                    changes["llm"] = {"provider": "openai", "openai": {"base_url": llm["base_url"], "model": llm["model"]}}
                else:
                    return _bad('llm must be "embedded", {"gguf": "NAME or path"} or {"base_url": "...", "model": "..."}')
            if "voice" in body:
                enabled = body["voice"].get("enabled") if isinstance(body["voice"], dict) else None
                if not isinstance(enabled, bool):
                    return _bad('voice must be {"enabled": true} or {"enabled": false}')
                changes["voice"] = {"enabled": enabled}
            character = None
            if "character" in body:
                from companion.character.persona import CardError, load_character, resolve_imported

                if not isinstance(body["character"], str):
                    return _bad("character must be the name of an imported character")
                try:
                    path = resolve_imported(body["character"], self.settings.data_path() / "personas")
                    character = await asyncio.to_thread(load_character, path)
                except CardError as exc:
                    return _bad(str(exc))
                changes["persona"] = {"card": character.name}
            try:
                wanted = Settings.model_validate(deep_merge(self.settings.model_dump(exclude={"source"}, exclude_unset=True), changes))
            except Exception as exc:  # noqa: BLE001 - pydantic's message names the field
                return _bad(f"not a valid setting: {exc}")
            if "llm" in changes:
                try:
                    name = await self.companion.switch_llm(wanted)
                except Exception as exc:  # noqa: BLE001 - the server is down, the model missing...: keep the old one
                    return web.json_response({"error": f"the model did not answer, nothing changed: {exc}"}, status=409)
                applied.append(f"model: {name}")
            if character is not None:
                self.companion.character = character
                applied.append(f"character: {character.name}")
            if "voice" in changes:
                self.settings.voice.enabled = changes["voice"]["enabled"]
                applied.append(f"voice {'on' if changes['voice']['enabled'] else 'off'} from the next start")
            saved = await asyncio.to_thread(self._save, changes)
        return web.json_response({"applied": applied, "saved": saved})

    # -- models: the catalog, what is on disk, and one download at a time with its progress ----------

    async def models(self, request: web.Request) -> web.Response:
        from companion.models.local import inventory

        try:
            found = await asyncio.to_thread(inventory)
        except ImportError:
            return web.json_response({"error": "model downloads need huggingface_hub: pip install 'companion[llamacpp]'"}, status=501)
        return web.json_response({**found, "pull": dict(self.pull_state)})

    async def pull_status(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.pull_state))

    async def pull(self, request: web.Request, body: dict[str, Any] | None) -> web.Response:
        from companion.models.catalog import load_catalog
        from companion.models.hub import ModelError, parse_ref

        ref = body.get("ref") if body else None
        if not isinstance(ref, str) or not ref.strip():
            return _bad('send {"ref": "a catalog name, ORG/REPO or ORG/REPO:FILE.gguf"}')
        if self._pull_task is not None and not self._pull_task.done():
            return web.json_response({"error": f"already downloading {self.pull_state.get('ref')}"}, status=409)
        try:
            model = parse_ref(ref, load_catalog())
        except ModelError as exc:
            return _bad(str(exc))
        self.pull_state = {"state": "pulling", "ref": ref, "bytes": 0, "total": None, "error": "", "path": ""}
        self._pull_task = spawn(self._pull(model), f"pull {ref}")
        return web.json_response(dict(self.pull_state), status=202)

    async def _pull(self, model: Any) -> None:
        from companion.models.hub import ModelError, pull

        state = self.pull_state

        def progress(done: int, total: int | None) -> None:  # from the download thread: plain assignments
            state["bytes"], state["total"] = done, total

        try:
            # a daemon thread: a download of gigabytes must never hold up the companion's shutdown
            paths = await run_in_daemon_thread(lambda: pull(model, progress=False, on_progress=progress))
        except ModelError as exc:
            state.update(state="failed", error=str(exc))
            return
        state.update(state="done", path=str(paths[0]), bytes=paths[0].stat().st_size, total=paths[0].stat().st_size)
        log.info("models: pulled %s to %s", state["ref"], paths[0])

    def _save(self, changes: dict[str, Any]) -> str | None:
        """Write the changes into the config file; None when there is none (they last until the restart)."""
        path: Path | None = self.settings.source
        if path is None:
            return None
        try:
            save_config(path, deep_merge(read_config_data(path), changes))
        except (ConfigError, OSError) as exc:
            log.warning("settings: applied but not saved to %s: %s", path, exc)
            return None
        return str(path)


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
