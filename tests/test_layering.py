"""The package reads top-down: the core does not reach into the adapters, memory does not reach into games."""

import ast
import asyncio
import logging
from pathlib import Path

from companion.runtime.tasks import running, spawn

PACKAGE = Path(__file__).resolve().parents[1] / "companion"


def runtime_imports(path: Path) -> set[str]:
    """Modules a file imports when it runs (imports under `if TYPE_CHECKING:` are types only and left out)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add("." * node.level + node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_engine_imports_nothing_from_voice_or_stream_and_memory_nothing_from_games():
    """The engine, the reply handle and speech take no module from voice/ or stream/; memory/ takes nothing from games/."""
    for core in ("engine.py", "reply.py", "speech.py", "turn.py"):
        found = runtime_imports(PACKAGE / core)
        assert not [m for m in found if m.lstrip(".").startswith(("voice", "stream"))], (core, found)
    for path in (PACKAGE / "memory").glob("*.py"):
        assert not [m for m in runtime_imports(path) if "games" in m], path


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
