"""`companion plugins list|run`: what plugins there are, and the commands they add."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, cast

from companion.cli.common import EXIT_FAILURE, EXIT_USAGE, Command, show_help
from companion.config import Settings


def register(sub: Any) -> None:
    plugins = sub.add_parser("plugins", help="plugins: list them, run their commands")
    plugins_sub = plugins.add_subparsers(dest="plugins_command", metavar="ACTION")
    plist = plugins_sub.add_parser("list", help="available plugins: enabled, loaded or failed (and why), with their tools")
    plist.add_argument("--json", action="store_true")
    prun = plugins_sub.add_parser("run", help="run a command a plugin added: companion plugins run PLUGIN COMMAND [ARGS...]")
    prun.add_argument("plugin")
    prun.add_argument("plugin_command")
    prun.add_argument("args", nargs=argparse.REMAINDER)
    plugins.set_defaults(handler=Command(lambda settings, args: asyncio.run(_plugins(settings, args))))


async def _plugins(settings: Settings, args: argparse.Namespace) -> int:
    """Load the enabled plugins into a companion that never talks, to report on them or run a command."""
    from companion.app import setup_logging
    from companion.character.persona import default_character
    from companion.core.engine import Companion
    from companion.core.history import HistoryStore
    from companion.plugins import PluginManager
    from companion.testing import ScriptedLLM

    if args.plugins_command not in ("list", "run"):
        show_help("plugins")
    setup_logging(settings, console_level="ERROR")
    companion = Companion(settings, llm=ScriptedLLM(), character=default_character(), history=HistoryStore(settings.data_path() / "history.sqlite3"))
    await companion.start()
    manager = PluginManager(companion)
    try:
        if args.plugins_command == "run":
            if not await manager.load(args.plugin):
                print(f"error: plugin {args.plugin} failed to load: {manager.states[args.plugin].error}", file=sys.stderr)
                return EXIT_FAILURE
            handler = manager.commands.get(f"{args.plugin}.{args.plugin_command}")
            if handler is None:
                known = ", ".join(k.split(".", 1)[1] for k in manager.commands if k.startswith(args.plugin + ".")) or "none"
                print(f"error: plugin {args.plugin} has no command {args.plugin_command!r} (it has: {known})", file=sys.stderr)
                return EXIT_USAGE
            return await handler(list(args.args))
        await manager.load_enabled()
        states = manager.discover()
        tools = {name: [t for t in manager.tools.names() if (tool := manager.tools.get(t)) and tool.source == name] for name in states}
        rows = [
            {"name": s.name, "enabled": s.enabled, "status": s.status, "error": s.error, "origin": s.origin, "tools": tools.get(s.name, [])}
            for s in sorted(states.values(), key=lambda s: s.name)
        ]
        rows += [
            {"name": s.name, "enabled": True, "status": s.status, "error": s.error, "origin": "", "tools": []}
            for s in manager.states.values() if s.name not in states
        ]
        if args.json:
            print(json.dumps(rows))
        else:
            for row in rows:
                flag = "enabled" if row["enabled"] else "-"
                names = cast("list[str]", row["tools"])
                extra = f"  ({row['error']})" if row["error"] else (f"  tools: {', '.join(names)}" if names else "")
                print(f"{row['name']:<16} {flag:<8} {row['status']:<10}{extra}")
        return 0 if all(r["status"] != "failed" for r in rows) else EXIT_FAILURE
    finally:
        await manager.unload_all()
        await companion.close()
