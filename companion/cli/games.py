"""`companion game demo` (tic-tac-toe through the Neuro game API) and `companion minecraft demo`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from companion.cli.common import EXIT_FAILURE, Command, report_text, show_help, user_error
from companion.config import Settings

if TYPE_CHECKING:
    from companion.games.demo import DemoStats

def register(sub: Any) -> None:
    minecraft = sub.add_parser("minecraft", help="Minecraft co-play through mineflayer (Node.js)")
    minecraft_sub = minecraft.add_subparsers(dest="minecraft_command", metavar="ACTION")
    mdemo = minecraft_sub.add_parser("demo", help="start a local test server, join it, run a short scripted goal, print what happened")
    mdemo.add_argument("--json", action="store_true", help="print one JSON object: joined, skills [{name, ok, reason, ms}]")
    minecraft.set_defaults(handler=Command(_minecraft))

    game = sub.add_parser("game", help="games that speak the Neuro game API")
    game_sub = game.add_subparsers(dest="game_command", metavar="ACTION")
    demo = game_sub.add_parser("demo", help="watch the companion play tic-tac-toe through the Neuro API")
    demo.add_argument("--rounds", type=int, default=1, help="how many games to play")
    demo.add_argument("--connect", help="play against a running companion at this ws:// URL instead of starting one")
    game.set_defaults(handler=Command(_game))


def _game(settings: Settings, args: argparse.Namespace) -> int:
    import aiohttp

    from companion.app import setup_logging

    if args.game_command != "demo":
        show_help("game")
    setup_logging(settings, console_level="WARNING")
    try:
        stats = asyncio.run(run_demo(settings, rounds=args.rounds, connect=args.connect))
    except KeyboardInterrupt:
        return 130
    except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
        print(f"error: the game lost its connection ({exc}); is the companion running with [games] enabled?", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001
        message = user_error(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"played {stats.rounds} game(s), {stats.moves} moves, {stats.rejected} rejected moves: {', '.join(stats.results)}")
    return 0


def _minecraft(settings: Settings, args: argparse.Namespace) -> int:
    from companion.minecraft.demo import print_demo, run_demo
    from companion.minecraft.process import MinecraftError

    if args.minecraft_command != "demo":
        show_help("minecraft")
    try:
        out = asyncio.run(run_demo(node=settings.minecraft.node))
    except MinecraftError as exc:
        return report_text(str(exc), args.json)
    print_demo(out, args.json)
    return 0 if out["joined"] else EXIT_FAILURE


async def run_demo(settings: Settings, *, rounds: int = 1, connect: str | None = None, show: Callable[[str], None] = print) -> DemoStats:
    """Play against an already running companion (``connect``) or start one in this process."""
    from companion.games.demo import play

    if connect:
        return await play(connect, rounds=rounds, show=show)
    from companion.app import build_companion, build_game_server
    from companion.runtime.events import SentenceReady

    companion = build_companion(settings)
    await companion.start()
    server = build_game_server(companion, settings, port=0)
    companion.bus.subscribe(SentenceReady, lambda e: show(f"{companion.character.name}: {e.text}"))
    await server.start()
    try:
        return await play(f"ws://127.0.0.1:{server.port}/", rounds=rounds, show=show)
    finally:
        await server.stop()
        await companion.close()
