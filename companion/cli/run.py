"""`companion run` (start everything configured) and `companion status` (ask a running one how it is)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any, NoReturn

from companion.cli.common import EXIT_FAILURE, Command, user_error
from companion.config import Settings


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="start the configured adapters (default: the web chat on 127.0.0.1:8765)")
    run.set_defaults(handler=Command(lambda settings, args: _run(settings)))
    status = sub.add_parser("status", help="ask a running companion how each adapter is doing (its /health)")
    status.add_argument("--json", action="store_true", help="print the health report as JSON")
    status.set_defaults(handler=Command(_status))
    pet = sub.add_parser(
        "pet", help="her own window on the desktop, beside a running companion (starts one when none runs)",
        description="A frameless, transparent, always-on-top window with her avatar, a speech bubble, a box to type to her "
        "and push-to-talk. Drag her to move, scroll over her to resize; both are remembered. Needs the pet extra: "
        "pip install 'companion[pet]'.",
    )
    pet.add_argument("--url", help="the companion's address (default: the one this data folder's companion runs on)")
    pet.add_argument("--no-start", action="store_true", help="do not start a companion when none answers; say so")
    pet.set_defaults(handler=Command(_pet))


def _run(settings: Settings) -> int:
    from companion.app import run, setup_logging

    log_file = setup_logging(settings)
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - turned into one clear line
        message = user_error(exc)
        if message is None:
            logging.getLogger("companion").exception("companion stopped on an unexpected error")
            message = f"unexpected {type(exc).__name__}: {exc} (details in {log_file})"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    _leave_now()


def _leave_now() -> NoReturn:
    """A clean stop has saved and closed everything (history, the memory journal, the run file): leave at once.

    Python's exit joins every worker thread first, and one may still be inside a model call nobody waits for
    (whisper, llama.cpp, the embedder, a memory job journaled for the next start): measured under the soak's load,
    0.4 s and more past the 2 s shutdown promise.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _pet(settings: Settings, args: argparse.Namespace) -> int:
    from companion.pet.launch import PetError, run_pet
    from companion.pet.platform import NoDisplay

    try:
        return run_pet(settings, url=args.url, start=not args.no_start, say=lambda line: print(line, file=sys.stderr))
    except (PetError, NoDisplay) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def _status(settings: Settings, args: argparse.Namespace) -> int:
    """Print a running instance's health; exit 0 when all is well, 1 when degraded, 3 when none answers."""
    import urllib.error
    import urllib.request

    run_file = settings.data_path() / "run.json"
    try:
        info = json.loads(run_file.read_text(encoding="utf-8"))
        port = int(info["web_port"])
    except FileNotFoundError:
        print(f"not running: no companion has started with the data folder {settings.data_path()}", file=sys.stderr)
        return 3
    except (OSError, ValueError, KeyError, TypeError):
        print("running without the web server: `companion status` reads /health, so it needs [web] enabled", file=sys.stderr)
        return 3
    request = urllib.request.Request(f"http://127.0.0.1:{port}/health")
    token = settings.web_token()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - a loopback URL we built
            report = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"not answering on 127.0.0.1:{port} (pid {info.get('pid')}): {exc}; it may have stopped", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(report))
    else:
        lag = report.get("loop_lag_ms") or {}
        print(
            f"{report.get('character', 'companion')}: {report['status']}, up {_duration(report.get('uptime_s', 0))}"
            + (f", event loop lag p99 {lag['p99']} ms" if lag else "")
        )
        for name, h in report.get("adapters", {}).items():
            line = f"  {name:<16} {h['state']:<9} for {_duration(h['for_s'])}"
            if h.get("restarts"):
                line += f", {h['restarts']} restart(s)"
            if h.get("detail") and h["state"] == "up":
                detail = h["detail"] if len(h["detail"]) <= 70 else h["detail"][:67] + "..."
                line += f"  ({detail})"
            if h.get("last_error") and h["state"] != "up":
                line += f"  last error: {h['last_error']}"
            print(line)
    return 0 if report.get("status") == "ok" else 1


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
