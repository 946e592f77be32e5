"""Plugins: small Python modules that add tools, event handlers, background tasks and commands.

A plugin is a module or package with ``async def setup(app)`` (and optionally
``async def teardown(app)``), found in the project's ``plugins/`` folder, the
user's plugins folder (``DATA/plugins``) or installed packages declaring the
``companion.plugins`` entry point, and loaded when named in ``[plugins] enabled``.
Everything a plugin registers through ``app`` is recorded, so a failing
``setup`` or an unload undoes all of it; one broken plugin never stops the others.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from companion.tools.registry import Tool, ToolRegistry

if TYPE_CHECKING:
    from companion.core.engine import Companion

log = logging.getLogger(__name__)

__all__ = ["PluginApp", "PluginManager", "PluginError", "project_plugins_dir"]

ENTRY_POINT_GROUP = "companion.plugins"


class PluginError(Exception):
    """A plugin could not be found or loaded; the message names it and the cause."""


def project_plugins_dir() -> Path:
    """The ``plugins/`` folder of a checkout, or the copy bundled in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "plugins", here / "_bundled" / "plugins"):
        if candidate.is_dir():
            return candidate
    return here.parent / "plugins"


@dataclass
class PluginApp:
    """What ``setup(app)`` receives: the companion and ways to extend it, each undone on unload."""

    name: str
    companion: "Companion"
    tools: ToolRegistry
    commands: dict[str, Callable[[list[str]], Awaitable[int]]]
    config: dict[str, Any] = field(default_factory=dict)
    # Timers wait with app.sleep: real time in the product, a VirtualClock's sleep in tests.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _undo: list[Callable[[], Any]] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def bus(self) -> Any:
        return self.companion.bus

    @property
    def settings(self) -> Any:
        return self.companion.settings

    @property
    def data_dir(self) -> Path:
        """A folder of this plugin's own in the data folder (created on first use)."""
        path = self.companion.settings.data_path() / "plugins-data" / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def tool(
        self, name: str, description: str, parameters: dict[str, Any] | None = None, *, permission: str = "anyone", timeout: float = 20.0
    ) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
        """Decorator: ``@app.tool("roll_dice", "Roll dice", {...})`` over ``async def fn(args, ctx)``."""

        def wrap(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            self.add_tool(Tool(name, description, fn, parameters or {"type": "object", "properties": {}}, permission, timeout, self.name))
            return fn

        return wrap

    def add_tool(self, tool: Tool) -> None:
        tool.source = tool.source or self.name
        self._undo.append(self.tools.register(tool))

    def on(self, event_type: type, handler: Callable[[Any], Any]) -> None:
        """Call ``handler(event)`` for every event of this type on the bus."""
        self._undo.append(self.companion.bus.subscribe(event_type, handler))

    def background(self, coro_factory: Callable[[], Coroutine[Any, Any, Any]], name: str = "") -> None:
        """Run a long-lived task (an adapter, a scheduler); cancelled on unload."""
        task = asyncio.get_running_loop().create_task(coro_factory(), name=f"plugin-{self.name}-{name or 'task'}")
        self._tasks.append(task)

    def on_unload(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` when the plugin is unloaded (close files, connections, threads)."""
        self._undo.append(fn)

    def command(self, name: str, handler: Callable[[list[str]], Awaitable[int]]) -> None:
        """A CLI command: ``companion plugins run PLUGIN NAME [ARGS...]``."""
        key = f"{self.name}.{name}"
        self.commands[key] = handler
        self._undo.append(lambda: self.commands.pop(key, None))

    async def unwind(self) -> None:
        """Undo everything this plugin registered (the manager calls it on unload or a failed setup)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for undo in reversed(self._undo):
            try:
                undo()
            except Exception:  # noqa: BLE001
                log.exception("plugin %s: undo step failed", self.name)
        self._undo.clear()


@dataclass
class PluginState:
    name: str
    origin: str  # folder path or entry point
    enabled: bool = False
    status: str = "available"  # available | loaded | failed
    error: str = ""


def user_plugins_dir(settings: Any) -> Path:
    return Path(settings.plugins.folder).expanduser() if settings.plugins.folder else settings.data_path() / "plugins"


def discover_plugins(folders: list[Path], enabled: list[str]) -> dict[str, PluginState]:
    """Plugins in these folders and the entry point group; earlier sources shadow later ones."""
    found: dict[str, PluginState] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            name = path.stem if path.suffix == ".py" else path.name
            is_plugin = (path.suffix == ".py" and not name.startswith("_")) or (path / "__init__.py").is_file()
            if is_plugin and name not in found:
                found[name] = PluginState(name, str(path))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, PluginState(ep.name, f"entry point {ep.value}"))
    for name, state in found.items():
        state.enabled = name in enabled
    return found


class PluginManager:
    def __init__(
        self, companion: "Companion", *, folders: list[Path] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.companion = companion
        self.sleep = sleep
        self.folders = folders if folders is not None else [project_plugins_dir(), user_plugins_dir(companion.settings)]
        if companion.tools is None:
            companion.tools = ToolRegistry()
        self.tools = companion.tools
        self.commands: dict[str, Callable[[list[str]], Awaitable[int]]] = {}
        self._apps: dict[str, tuple[ModuleType, PluginApp]] = {}
        self.states: dict[str, PluginState] = {}

    def discover(self) -> dict[str, PluginState]:
        """Every plugin that could be loaded, by name, with what this manager knows of its state."""
        found = discover_plugins(self.folders, self.companion.settings.plugins.enabled)
        for name, state in found.items():
            if name in self.states:
                state.status, state.error = self.states[name].status, self.states[name].error
        self.states.update(found)
        return found

    def _import(self, state: PluginState) -> ModuleType:
        origin = state.origin
        if origin.startswith("entry point "):
            ep = next(ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == state.name)
            module = ep.load()
            if not isinstance(module, ModuleType):
                raise PluginError(f"plugin {state.name}: entry point {ep.value} must name a module")
            return module
        path = Path(origin)
        init = path / "__init__.py" if path.is_dir() else path
        mod_name = f"companion_plugin_{state.name}"
        spec = importlib.util.spec_from_file_location(mod_name, init, submodule_search_locations=[str(path)] if path.is_dir() else None)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin {state.name}: cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(mod_name, None)
            raise
        return module

    async def load(self, name: str, config: dict[str, Any] | None = None) -> bool:
        """Load one plugin; on any failure everything it registered is undone and False returned."""
        states = self.discover()
        state = states.get(name)
        if state is None:
            self.states[name] = PluginState(name, "", True, "failed", "not found in " + ", ".join(str(f) for f in self.folders))
            log.error("plugin %s: not found (looked in %s and the %s entry points)", name, ", ".join(map(str, self.folders)), ENTRY_POINT_GROUP)
            return False
        if name in self._apps:
            return True
        app = PluginApp(name, self.companion, self.tools, self.commands, config or {}, self.sleep)
        try:
            module = self._import(state)
            setup = getattr(module, "setup", None)
            if setup is None or not asyncio.iscoroutinefunction(setup):
                raise PluginError("it has no `async def setup(app)`")
            await setup(app)
        except Exception as exc:  # noqa: BLE001 - reported with the plugin's name, never fatal
            await app.unwind()
            state.status, state.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("plugin %s failed to load: %s", name, state.error)
            return False
        self._apps[name] = (module, app)
        state.status, state.error = "loaded", ""
        log.info("plugin %s loaded", name)
        return True

    async def load_enabled(self) -> None:
        for name in self.companion.settings.plugins.enabled:
            await self.load(name)

    async def unload(self, name: str) -> None:
        entry = self._apps.pop(name, None)
        if entry is None:
            return
        module, app = entry
        teardown = getattr(module, "teardown", None)
        if teardown is not None:
            try:
                await teardown(app)
            except Exception:  # noqa: BLE001
                log.exception("plugin %s: teardown failed", name)
        await app.unwind()
        self.states[name].status = "available"

    async def unload_all(self) -> None:
        for name in list(self._apps):
            await self.unload(name)
