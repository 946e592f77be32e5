"""Accounts and peers: `companion stream twitch-login` (authorise the bot) and `companion avatar check` (VTube Studio)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from companion.cli.common import EXIT_FAILURE, EXIT_USAGE, Command, report, show_help
from companion.config import Settings


def register(sub: Any) -> None:
    stream = sub.add_parser("stream", help="stream platforms: log in to Twitch")
    stream_sub = stream.add_subparsers(dest="stream_command", metavar="ACTION")
    stream_sub.add_parser("twitch-login", help="authorise the bot account on Twitch (device code; tokens kept in the data folder)")
    stream.set_defaults(handler=Command(_stream))

    avatar = sub.add_parser("avatar", help="VTube Studio: check the connection")
    avatar_sub = avatar.add_subparsers(dest="avatar_command", metavar="ACTION")
    check = avatar_sub.add_parser("check", help="connect, authenticate, list hotkeys and expressions, wiggle the mouth")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    avatar.set_defaults(handler=Command(_avatar))


def _stream(settings: Settings, args: argparse.Namespace) -> int:
    if args.stream_command != "twitch-login":
        show_help("stream")
    from companion.stream.twitch import TokenStore, TwitchError, device_login

    if not settings.stream.twitch.client_id:
        print("error: set [stream.twitch] client_id first (create an application at https://dev.twitch.tv/console)", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(device_login(settings.stream.twitch, TokenStore(settings.data_path() / "twitch_tokens.json")))
    except KeyboardInterrupt:
        return 130
    except TwitchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _avatar(settings: Settings, args: argparse.Namespace) -> int:
    if args.avatar_command != "check":
        show_help("avatar")
    from companion.app import setup_logging

    setup_logging(settings, console_level="ERROR" if args.json else "WARNING")
    from companion.avatar.cli import avatar_check

    try:
        out = asyncio.run(avatar_check(settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001
        return report(exc, args.json)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"connected to VTube Studio {out['vtube_studio']} at {out['url']}; model: {out['model']}")
        print("hotkeys: " + (", ".join(h["name"] for h in out["hotkeys"]) or "none"))
        print("expressions: " + (", ".join(out["expressions"]) or "none"))
        print(f"mouth wiggled for 1 s ({out['mouth_frames']} frames)")
    return 0
