"""The package reads top-down: layers import only from the layers below them, with no cycles."""

import ast
import asyncio
import logging
from pathlib import Path

from companion.runtime.tasks import running, spawn

PACKAGE = Path(__file__).resolve().parents[1] / "companion"


# Bottom to top. A module may import from its own package and from packages on lower layers, never from a
# package on its own layer or above. Every package of companion/ is listed; ARCHITECTURE.md explains each.
LAYERS: list[tuple[str, ...]] = [
    ("config", "text"),  # settings and pure text: import nothing else from companion
    ("runtime",),  # bus, events, supervisor, tasks, SQLite thread: plumbing
    ("character", "llm", "tools"),  # what she is; the model; the tool registry and MCP
    ("memory", "models"),  # long-term memory (uses the model for extraction); model files: catalog, hub, local stores
    ("core",),  # the conversation: engine, reply, turn, speech, prompt, history
    ("voice", "avatar", "stream", "games", "minecraft", "group"),  # adapters to one part of the world each
    ("init", "pet"),  # the set-up wizard (checks voice and avatar devices); the desktop pet's window (a client of the web server)
    ("adapters",),  # web, Discord, the Neuro game server: they combine the adapters above
    ("plugins", "testing"),  # the plugin API and the test helpers shipped in the package
    ("app",),  # builds everything from config and runs it
    ("cli",),  # the command line, the top
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_imports(path: Path) -> set[str]:
    """Every companion module a file imports, at run time or for types only, as absolute names."""
    tree = ast.parse(path.read_text())
    base = module_name(path).split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module
            if target and target.split(".")[0] == "companion":
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "companion")
    return found


def layer_of(module: str) -> str | None:
    """The top-level package (or root module) a module belongs to; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def sources() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "node_modules" not in p.parts]


def test_every_package_has_a_layer():
    """Each package and root module of companion/ sits on exactly one layer (a new one must be placed)."""
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists())}
    tops -= {"__init__", "__main__"}
    assert tops == set(RANK), (sorted(tops - set(RANK)), sorted(set(RANK) - tops))


def test_imports_point_down_the_layers_only():
    """No module imports from its own layer's other packages or from a higher layer, typing imports included."""
    wrong = []
    for path in sources():
        here = layer_of(module_name(path))
        if here is None or module_name(path) == "companion.__main__":
            continue
        for imported in all_imports(path):
            there = layer_of(imported)
            if there is None or there == here or imported == "companion.__version__":
                continue
            if there not in RANK:  # an old name (kept for plugins, with a warning) or a package without a layer
                wrong.append(f"{path.relative_to(PACKAGE)} imports {imported}, which is not in any layer")
                continue
            if RANK[there] >= RANK[here]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {imported} ({here} is not above {there})")
    assert wrong == []


def test_no_import_cycles_between_modules():
    """The module graph, typing imports included, has no cycle (engine and reply no longer import each other)."""
    known = {module_name(p) for p in sources()}
    graph: dict[str, set[str]] = {}
    for path in sources():
        out = set()
        for imported in all_imports(path):
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]  # `from pkg import name`: the module, not the name
            if imported and imported != module_name(path):
                out.add(imported)
        graph[module_name(path)] = out
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt.startswith(node + "."):
                continue  # a package's __init__ re-exporting its own submodule
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_packages_stay_small_and_files_short():
    """No package holds more than 12 modules at its top and no source file is over 600 lines."""
    folders = [p for p in PACKAGE.rglob("*") if p.is_dir() and (p / "__init__.py").exists() and "node_modules" not in p.parts]
    for folder in [PACKAGE, *folders]:
        modules = list(folder.glob("*.py"))
        assert len(modules) <= 12, f"{folder.relative_to(PACKAGE.parent)} has {len(modules)} modules"
    long = {str(p.relative_to(PACKAGE)): n for p in sources() if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


def test_the_core_names_no_platform():
    """Platform names live with the adapters that declare them (core.platforms), not in the core's code."""
    for path in (PACKAGE / "core").glob("*.py"):
        text = path.read_text()
        for name in ("twitch", "youtube", "minecraft", "discord"):
            assert f'"{name}"' not in text, f"core/{path.name} names {name}"


def test_engine_imports_nothing_from_voice_or_stream_and_memory_nothing_from_games():
    """The core takes no module from voice/ or stream/; memory/ takes nothing from games/."""
    for path in (PACKAGE / "core").glob("*.py"):
        assert not [m for m in all_imports(path) if m.startswith(("companion.voice", "companion.stream"))], path
    for path in (PACKAGE / "memory").glob("*.py"):
        assert not [m for m in all_imports(path) if m.startswith("companion.games")], path


def test_the_discord_bot_and_its_receiver_do_not_import_each_other():
    """The receiver gets what it needs (companion, models, connection, buffer) passed in; only the bot imports it."""
    receive = PACKAGE / "adapters" / "discord" / "receive.py"
    tree = ast.parse(receive.read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "bot" not in imported and not any(m.endswith(".bot") for m in imported), imported


async def test_spawned_tasks_are_kept_and_their_failures_logged(caplog):
    """A background task is referenced until it ends, and its exception is logged with the task's name."""
    async def boom() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad thing")

    before = running()
    task = spawn(boom(), "test-boom")
    assert running() == before + 1
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    assert running() == before
    assert any(r.levelno == logging.ERROR and "test-boom" in r.getMessage() and "bad thing" in r.getMessage() for r in caplog.records)


def test_every_event_is_defined_in_events_py():
    """Event classes live in companion/runtime/events.py only, so one file lists everything that flows on the bus."""
    for path in PACKAGE.rglob("*.py"):
        if path.name == "events.py" or "node_modules" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        defined = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and any(ast.unparse(b) == "Event" for b in n.bases)]
        assert defined == [], f"{path.relative_to(PACKAGE)} defines events {defined}"


def test_old_module_names_still_import_with_a_warning():
    """A plugin written against a module's old place (companion.events) gets the same module and a DeprecationWarning."""
    import importlib
    import sys
    import warnings

    import companion.runtime.events as events

    sys.modules.pop("companion.events", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("companion.events")
    assert old is events
    assert any(issubclass(w.category, DeprecationWarning) and "companion.runtime.events" in str(w.message) for w in caught)
