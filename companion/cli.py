"""The ``companion`` command: run, chat, config, doctor.

Every failure a user can cause (bad config, missing model, unreachable
server) ends as one "error: ..." line with a hint and a non-zero exit code,
never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import mimetypes
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, cast

from . import __version__, masking
from .config import ConfigError, Settings, example_toml, load_settings, resolve_config_path
from .datadir import PRIVATE_UMASK, prepare_data_dir
from .masking import MaskingStream

EXIT_USAGE = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    """Global options (--config, --data-dir) are accepted after any subcommand too: `companion run --config my.toml`."""

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _Parser)
        action = super().add_subparsers(**kwargs)
        add = action.add_parser

        def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
            parser = add(name, **kw)
            _global_options(parser, argparse.SUPPRESS)  # SUPPRESS: do not overwrite a value given before
            return parser

        action.add_parser = add_parser  # type: ignore[method-assign]
        return action


def _global_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    parser.add_argument("--config", default=default, help="path to companion.toml (default: $COMPANION_CONFIG or ./companion.toml)")
    parser.add_argument("--data-dir", default=default, help="folder for history, logs and caches (overrides the config)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="companion", description="A self-hosted AI companion.")
    parser.add_argument("--version", action="version", version=f"companion {__version__}")
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("run", help="start the configured adapters (default: the web chat on 127.0.0.1:8765)")
    init = sub.add_parser("init", help="guided set-up: your model server, microphone and speaker, VTube Studio, your name")
    init.add_argument("step", nargs="?", choices=["llm", "voice", "avatar", "character"], help="run one step only")
    init.add_argument("--yes", "-y", action="store_true", help="ask nothing: take what is detected (and the flags below)")
    init.add_argument("--llm", help="embedded, ollama, lmstudio, or the URL of an OpenAI-compatible server")
    init.add_argument("--model", help="the model to use on that server")
    init.add_argument("--name", help="your name (the character calls you by it)")
    init.add_argument("--card", help="a character card file to import and use")
    init.add_argument("--voice", choices=["on", "off"], help="off: skip the device checks and leave voice off")
    init.add_argument("--avatar", help="off, or VTube Studio's ws:// URL (default: discover it)")
    status = sub.add_parser("status", help="ask a running companion how each adapter is doing (its /health)")
    status.add_argument("--json", action="store_true", help="print the health report as JSON")

    chat = sub.add_parser("chat", help="talk to the character in the terminal")
    chat.add_argument("--message", "-m", help="send one message, print the reply and exit")
    chat.add_argument("--json", action="store_true", help="with --message: print one JSON object")
    chat.add_argument("--speaker", default="local", help="who is speaking (an id; memory tells people apart by it)")
    chat.add_argument("--name", help="the speaker's display name (default: the speaker id)")
    chat.add_argument("--conversation", default="cli", help="conversation id (history is kept per conversation)")
    chat.add_argument("--image", action="append", default=[], help="attach an image file or URL (repeatable)")
    chat.add_argument(
        "--platform", default="cli", choices=["cli", "twitch", "youtube"],
        help="twitch/youtube: send the message the way stream chat arrives (moderation, prioritiser, chat prompt)",
    )

    voice = sub.add_parser("voice", help="one spoken turn from a WAV file, headless (VAD -> STT -> LLM -> TTS)")
    voice.add_argument("--input", "-i", required=True, help="WAV file with the question (any rate, mono or stereo)")
    voice.add_argument("--output", "-o", help="write the spoken reply to this WAV file")
    voice.add_argument("--json", action="store_true", help="print one JSON object (transcript, reply, timings)")
    voice.add_argument("--fast", action="store_true", help="feed the file as fast as possible instead of at real-time pace")
    voice.add_argument("--speaker", default="local", help="who is speaking (an id; memory tells people apart by it)")
    voice.add_argument("--name", help="the speaker's display name")
    voice.add_argument("--conversation", default="voice", help="conversation id")

    plugins = sub.add_parser("plugins", help="plugins: list them, run their commands")
    plugins_sub = plugins.add_subparsers(dest="plugins_command", metavar="ACTION")
    plist = plugins_sub.add_parser("list", help="available plugins: enabled, loaded or failed (and why), with their tools")
    plist.add_argument("--json", action="store_true")
    prun = plugins_sub.add_parser("run", help="run a command a plugin added: companion plugins run PLUGIN COMMAND [ARGS...]")
    prun.add_argument("plugin")
    prun.add_argument("plugin_command")
    prun.add_argument("args", nargs=argparse.REMAINDER)

    stream = sub.add_parser("stream", help="stream platforms: log in to Twitch")
    stream_sub = stream.add_subparsers(dest="stream_command", metavar="ACTION")
    stream_sub.add_parser("twitch-login", help="authorise the bot account on Twitch (device code; tokens kept in the data folder)")

    avatar = sub.add_parser("avatar", help="VTube Studio: check the connection")
    avatar_sub = avatar.add_subparsers(dest="avatar_command", metavar="ACTION")
    check = avatar_sub.add_parser("check", help="connect, authenticate, list hotkeys and expressions, wiggle the mouth")
    check.add_argument("--json", action="store_true", help="print one JSON object")

    config = sub.add_parser("config", help="check or print the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    config_sub.add_parser("check", help="validate the config file and report every problem")
    config_sub.add_parser("example", help="print a commented companion.toml with every option")

    sub.add_parser("doctor", help="check config, providers, models and ports; print what to fix")

    persona = sub.add_parser("persona", help="character cards: show, import, export")
    persona_sub = persona.add_subparsers(dest="persona_command", metavar="ACTION")
    show = persona_sub.add_parser("show", help="print a card as the companion reads it")
    show.add_argument("card", nargs="?", help="card file or imported name (default: the configured character)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    imp = persona_sub.add_parser("import", help="copy a card (JSON, PNG, CHARX) into your persona folder")
    imp.add_argument("card")
    exp = persona_sub.add_parser("export", help="write a character as a V3 card")
    exp.add_argument("name", help="imported name or card file")
    exp.add_argument("--format", choices=["png", "json"], default="png")
    exp.add_argument("--output", "-o", help="file to write (default: NAME.png / NAME.json here)")

    memory = sub.add_parser("memory", help="long-term memory: search, list, forget, export, link identities")
    memory_sub = memory.add_subparsers(dest="memory_command", metavar="ACTION")
    search = memory_sub.add_parser("search", help="memories closest in meaning to a query")
    search.add_argument("query")
    search.add_argument("--speaker", help="only this person (any of their linked ids)")
    search.add_argument("--limit", type=int, default=8)
    search.add_argument("--json", action="store_true")
    mlist = memory_sub.add_parser("list", help="newest memories")
    mlist.add_argument("--speaker")
    mlist.add_argument("--limit", type=int, default=50)
    mlist.add_argument("--json", action="store_true")
    forget = memory_sub.add_parser("forget", help="delete one memory by id, or everything about a speaker")
    forget.add_argument("id", nargs="?", type=int)
    forget.add_argument("--speaker")
    memory_sub.add_parser("export", help="every memory as JSON lines on stdout")
    link = memory_sub.add_parser("link", help="treat two speaker ids as one person (e.g. discord:123 and local)")
    link.add_argument("speaker")
    link.add_argument("other")

    minecraft = sub.add_parser("minecraft", help="Minecraft co-play through mineflayer (Node.js)")
    minecraft_sub = minecraft.add_subparsers(dest="minecraft_command", metavar="ACTION")
    mdemo = minecraft_sub.add_parser("demo", help="start a local test server, join it, run a short scripted goal, print what happened")
    mdemo.add_argument("--json", action="store_true", help="print one JSON object: joined, skills [{name, ok, reason, ms}]")

    game = sub.add_parser("game", help="games that speak the Neuro game API")
    game_sub = game.add_subparsers(dest="game_command", metavar="ACTION")
    demo = game_sub.add_parser("demo", help="watch the companion play tic-tac-toe through the Neuro API")
    demo.add_argument("--rounds", type=int, default=1, help="how many games to play")
    demo.add_argument("--connect", help="play against a running companion at this ws:// URL instead of starting one")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command with its output masked: no secret the config knows reaches the terminal."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskingStream(stdout), MaskingStream(stderr)
    umask = os.umask(PRIVATE_UMASK)  # history, memories and tokens are readable by the user alone
    try:
        return _main(argv)
    except (Exception, SystemExit) as exc:
        if isinstance(exc, SystemExit):
            raise
        traceback.print_exc()  # a bug: shown, masked
        return EXIT_FAILURE
    finally:
        os.umask(umask)
        sys.stdout.flush()
        sys.stdout, sys.stderr = stdout, stderr


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_USAGE
    if args.command == "config" and args.config_command == "example":
        sys.stdout.write(example_toml())
        return 0
    if args.data_dir:
        os.environ["COMPANION_DATA_DIR"] = args.data_dir
    if args.command == "init":
        return _init(args)
    try:
        path, explicit = resolve_config_path(args.config)
        settings = load_settings(path, explicit)
        masking.register(settings.secrets())
        if args.data_dir:
            settings.companion.data_dir = args.data_dir
        if args.command == "config":
            if args.config_command != "check":
                _parser().parse_args(["config", "--help"])
            where = settings.source or "no config file (embedded defaults)"
            print(f"ok: {where} is valid")
            return 0
        if args.command == "doctor":
            return asyncio.run(_doctor(settings))
        prepare_data_dir(settings.data_path())  # one clear line for a read-only or missing disk, before any log
        if args.command == "run":
            return _run(settings)
        if args.command == "status":
            return _status(settings, args)
        if args.command == "chat":
            return _chat(settings, args)
        if args.command == "game":
            return _game(settings, args)
        if args.command == "minecraft":
            return _minecraft(settings, args)
        if args.command == "persona":
            return _persona(settings, args)
        if args.command == "memory":
            return asyncio.run(_memory(settings, args))
        if args.command == "voice":
            return _voice(settings, args)
        if args.command == "avatar":
            return _avatar(settings, args)
        if args.command == "stream":
            return _stream(settings, args)
        if args.command == "plugins":
            return asyncio.run(_plugins(settings, args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return EXIT_USAGE


def _user_error(exc: BaseException) -> str | None:
    """The message for errors that are the user's to fix, else None (a real bug)."""
    from .llm.base import LLMError
    from .persona import CardError

    if isinstance(exc, (LLMError, CardError, ConfigError)):
        return str(exc)
    from .avatar.client import AvatarError
    from .voice.errors import VoiceError

    if isinstance(exc, (VoiceError, AvatarError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror}: {exc.filename or ''}".rstrip(": ")
    return None


def _report(exc: BaseException, as_json: bool) -> int:
    """A user-fixable error as one line (or one JSON object); anything else is a bug and propagates."""
    message = _user_error(exc)
    if message is None:
        raise exc
    if as_json:
        print(json.dumps({"error": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _run(settings: Settings) -> int:
    from .app import run, setup_logging

    log_file = setup_logging(settings)
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - turned into one clear line
        message = _user_error(exc)
        if message is None:
            import logging

            logging.getLogger("companion").exception("companion stopped on an unexpected error")
            message = f"unexpected {type(exc).__name__}: {exc} (details in {log_file})"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _init(args: argparse.Namespace) -> int:
    from .init.wizard import STEPS, InitOptions, Wizard

    path, _explicit = resolve_config_path(args.config)
    options = InitOptions(
        config_path=path or Path("companion.toml"), steps=(args.step,) if args.step else STEPS, yes=args.yes, llm=args.llm, model=args.model,
        name=args.name, card=args.card, voice=args.voice, avatar=args.avatar,
    )
    try:
        return asyncio.run(Wizard(options).run())
    except (KeyboardInterrupt, EOFError):
        print("\nstopped; nothing was written", file=sys.stderr)
        return 130


def _minecraft(settings: Settings, args: argparse.Namespace) -> int:
    from .minecraft.demo import print_demo, run_demo
    from .minecraft.process import MinecraftError

    if args.minecraft_command != "demo":
        _parser().parse_args(["minecraft", "--help"])
    try:
        out = asyncio.run(run_demo(node=settings.minecraft.node))
    except MinecraftError as exc:
        return _report_text(str(exc), args.json)
    print_demo(out, args.json)
    return 0 if out["joined"] else EXIT_FAILURE


def _report_text(message: str, as_json: bool) -> int:
    print(json.dumps({"error": message}) if as_json else f"error: {message}", file=sys.stdout if as_json else sys.stderr)
    return EXIT_FAILURE


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


async def _plugins(settings: Settings, args: argparse.Namespace) -> int:
    """Load the enabled plugins into a companion that never talks, to report on them or run a command."""
    from .app import setup_logging
    from .engine import Companion
    from .history import HistoryStore
    from .persona import default_character
    from .plugins import PluginManager
    from .testing import ScriptedLLM

    if args.plugins_command not in ("list", "run"):
        _parser().parse_args(["plugins", "--help"])
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


def _stream(settings: Settings, args: argparse.Namespace) -> int:
    if args.stream_command != "twitch-login":
        _parser().parse_args(["stream", "--help"])
    from .stream.twitch import TokenStore, TwitchError, device_login

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
        _parser().parse_args(["avatar", "--help"])
    from .app import setup_logging

    setup_logging(settings, console_level="ERROR" if args.json else "WARNING")
    from .avatar.cli import avatar_check

    try:
        out = asyncio.run(avatar_check(settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001
        return _report(exc, args.json)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"connected to VTube Studio {out['vtube_studio']} at {out['url']}; model: {out['model']}")
        print("hotkeys: " + (", ".join(h["name"] for h in out["hotkeys"]) or "none"))
        print("expressions: " + (", ".join(out["expressions"]) or "none"))
        print(f"mouth wiggled for 1 s ({out['mouth_frames']} frames)")
    return 0


def _voice(settings: Settings, args: argparse.Namespace) -> int:
    from .app import setup_logging

    setup_logging(settings, console_level="ERROR" if args.json else "WARNING")
    try:
        from .voice.cli import one_voice_turn
    except ImportError as exc:
        print(f"error: voice needs its extra ({exc.name} is missing): pip install 'companion[voice]'", file=sys.stderr)
        return EXIT_FAILURE
    try:
        out = asyncio.run(one_voice_turn(settings, args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001
        return _report(exc, args.json)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    elif not out["heard"]:
        print(out["message"])
    else:
        print(f"you: {out['transcript']}")
        print(f"reply: {out['spoken']}")
        t = out["timings"]
        print(f"voice-to-voice: {t.get('voice_to_voice_ms', '?')} ms" + (f"; written to {out['output']}" if out["output"] else ""))
    return 0


def _image_url(ref: str) -> str:
    if ref.startswith(("http://", "https://", "data:")):
        return ref
    path = Path(ref).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--image {ref}: cannot be read ({exc.strerror})") from None
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    if not mime.startswith("image/"):
        raise ConfigError(f"--image {ref}: not an image ({mime})")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from .app import default_model_notice, setup_logging

    setup_logging(settings, console_level="ERROR" if args.json else "WARNING")
    images = [_image_url(ref) for ref in args.image]
    if args.json and args.message is None:
        print("error: --json needs --message", file=sys.stderr)
        return EXIT_USAGE
    if not args.json and (notice := default_model_notice(settings)):
        print(f"note: {notice}", file=sys.stderr)
    try:
        return asyncio.run(_chat_async(settings, args, images))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001
        return _report(exc, args.json)


async def _chat_async(settings: Settings, args: argparse.Namespace, images: list[str]) -> int:
    from .app import build_companion

    companion = build_companion(settings)
    speaker_name = args.name or (args.speaker if args.speaker != "local" else None)
    await companion.start()
    from .app import Extensions

    extensions = Extensions(companion, settings)
    await extensions.start()
    try:
        if args.message is not None:
            return await _one_turn(companion, args, speaker_name, images)
        return await _interactive(companion, args, speaker_name, images)
    finally:
        await extensions.close()
        # a one-off chat ends right after the reply: give memory extraction time to finish, or nothing is remembered
        if companion.memory is not None and companion.memory.pending() and not args.json:
            print("(saving memories…)", file=sys.stderr)
        await companion.close(memory_grace=120.0)


async def _one_turn(companion: Any, args: argparse.Namespace, speaker_name: str | None, images: list[str]) -> int:
    def stream(text: str) -> None:
        if not args.json:
            sys.stdout.write(text)
            sys.stdout.flush()

    if args.platform in ("twitch", "youtube"):
        return await _stream_chat_turn(companion, args, speaker_name)
    result = await companion.respond(
        args.message,
        conversation_id=args.conversation,
        speaker_id=args.speaker,
        speaker_name=speaker_name,
        platform="cli",
        images=images,
        on_token=stream,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "reply": result.reply,
                    "emotions": result.emotions,
                    "sentences": [{"text": s.text, "speech": s.speech, "emotions": list(s.emotions)} for s in result.sentences],
                    "timings": result.timings_ms,
                    "turn_id": result.turn_id,
                    "interrupted": result.interrupted,
                    "error": result.error,
                    "character": companion.character.name,
                    "speaker": args.speaker,
                    "conversation": args.conversation,
                },
                ensure_ascii=False,
            )
        )
    else:
        print()
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
    return EXIT_FAILURE if result.error else 0


async def _stream_chat_turn(companion: Any, args: argparse.Namespace, speaker_name: str | None) -> int:
    """One chat message through exactly the path a Twitch/YouTube message takes."""
    from .stream.chat import StreamChat
    from .stream.message import ChatMessage

    chat = StreamChat(companion, companion.settings)
    name = speaker_name or args.speaker
    outcome = chat.ingest(ChatMessage(args.platform, args.speaker, name, args.message))
    candidate = chat.prioritiser.next() if outcome == "queued" else None
    if candidate is None:
        out = {"answered": False, "reason": outcome, "platform": args.platform, "speaker": args.speaker}
        print(json.dumps(out) if args.json else f"not answered: {outcome}")
        return 0
    result = await chat.answer(candidate)
    if args.json:
        print(json.dumps({
            "answered": True,
            "reply": result.reply,
            "emotions": result.emotions,
            "sentences": [{"text": s.text, "speech": s.speech} for s in result.sentences],
            "timings": result.timings_ms,
            "error": result.error,
            "platform": args.platform,
            "speaker": args.speaker,
            "conversation": f"stream:{args.platform}",
        }, ensure_ascii=False))
    else:
        print(result.reply)
    return EXIT_FAILURE if result.error else 0


async def _interactive(companion: Any, args: argparse.Namespace, speaker_name: str | None, images: list[str]) -> int:
    name = companion.character.name
    count = await companion.history.count(args.conversation)
    print(f"Talking to {name}. Empty line or Ctrl+D to quit; Ctrl+C stops a reply.")
    if count == 0 and companion.character.first_mes:
        from .text import extract_emotions

        print(f"{name}: {extract_emotions(companion.greeting(speaker_name or companion.settings.owner_display_name(), args.conversation))[0]}")
    you = speaker_name or (args.speaker if args.speaker != "local" else companion.settings.owner_display_name())
    while True:
        try:
            line = await asyncio.to_thread(input, f"{you}: ")
        except EOFError:
            print()
            return 0
        if not line.strip():
            return 0
        sys.stdout.write(f"{name}: ")
        sys.stdout.flush()
        task = asyncio.ensure_future(
            companion.respond(
                line,
                conversation_id=args.conversation,
                speaker_id=args.speaker,
                speaker_name=speaker_name,
                images=images,
                on_token=lambda t: (sys.stdout.write(t), sys.stdout.flush()) and None,
            )
        )
        images = []
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            # Ctrl+C while a reply streams stops that reply, not the chat
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            companion.interrupt(args.conversation)
            result = await task
        print()
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)


async def _memory(settings: Settings, args: argparse.Namespace) -> int:
    from .memory.store import MemoryStore

    if args.memory_command is None:
        _parser().parse_args(["memory", "--help"])
    store = MemoryStore(settings.data_path() / "memory.sqlite3")
    await store.open()
    try:

        def as_dict(m: Any, score: float | None = None) -> dict[str, Any]:
            d = {"id": m.id, "person": m.person_id, "kind": m.kind, "subject": m.subject, "content": m.content,
                 "importance": round(m.importance, 3), "created_at": m.created_at, "last_access": m.last_access,
                 "superseded_by": m.superseded_by, "conversation": m.conversation_id}
            if score is not None:
                d["score"] = round(score, 4)
            return d

        person = await store.person_for(args.speaker) if getattr(args, "speaker", None) else None
        if args.memory_command == "search":
            from .app import build_embedder

            embedder = build_embedder(settings)
            query = (await embedder.embed([args.query]))[0]
            await embedder.close()
            people = [person] if person else sorted({m.person_id for m in await store.list(limit=1_000_000)})
            found = await store.recall(people, query, k=args.limit, refresh=False)
            rows = [as_dict(r.memory, r.score) for r in found]
        elif args.memory_command == "list":
            rows = [as_dict(m) for m in await store.list(person, limit=args.limit)]
        elif args.memory_command == "forget":
            if args.id is None and person is None:
                print("error: give a memory id or --speaker ID", file=sys.stderr)
                return EXIT_USAGE
            if person:
                # As "forget everything about me" does in a conversation: the memories, the saved queue
                # and what they said in the chat log.
                from .history import HistoryStore
                from .memory.manager import saved_job_person

                count = await store.forget_person(person)
                await store.save_pending([p for p in await store.take_pending() if saved_job_person(p) != person])
                history = HistoryStore(settings.data_path() / "history.sqlite3")
                await history.open()
                said = await history.forget_speaker(args.speaker)
                await history.close()
                print(f"forgot {count} memor{'y' if count == 1 else 'ies'} and {said} message{'' if said == 1 else 's'}")
                return 0 if count or said else EXIT_FAILURE
            count = await store.forget([args.id])
            print(f"forgot {count} memor{'y' if count == 1 else 'ies'}")
            return 0 if count else EXIT_FAILURE
        elif args.memory_command == "export":
            for m in await store.list(include_superseded=True, limit=10_000_000):
                print(json.dumps(as_dict(m), ensure_ascii=False))
            return 0
        elif args.memory_command == "link":
            merged = await store.link(args.speaker, args.other)
            print(f"{args.speaker} and {args.other} are now one person ({merged}); ids: {', '.join(await store.identities(merged))}")
            return 0
        else:
            return EXIT_USAGE
        if getattr(args, "json", False):
            print(json.dumps(rows, ensure_ascii=False, indent=2))
        else:
            for row in rows:
                extra = f"  score {row['score']}" if "score" in row else ""
                print(f"#{row['id']} [{row['person']}] {row['content']}{extra}")
            if not rows:
                print("no memories")
        return 0
    finally:
        await store.close()


def _persona(settings: Settings, args: argparse.Namespace) -> int:
    from .app import load_persona
    from .macros import expand
    from .persona import CardError, import_character, load_character, resolve_card, slug
    from .prompt import NewMessage, build_messages

    personas = settings.data_path() / "personas"
    try:
        if args.persona_command == "show":
            character = load_character(resolve_card(args.card, personas)) if args.card else load_persona(settings)
            user = settings.companion.user_name
            system = build_messages(character, [], NewMessage("", user), conversation_start=False, seed="show")[0]["content"]
            info = {
                "name": character.name,
                "nickname": character.nickname,
                "spec": character.spec,
                "description": character.description,
                "personality": character.personality,
                "scenario": character.scenario,
                "greetings": [expand(character.first_mes, char=character.display_name, user=user, seed="show")]
                + [g for g in character.alternate_greetings],
                "tags": character.tags,
                "creator": character.creator,
                "lorebook_entries": len(character.book.entries) if character.book else 0,
                "system_prompt": system,
                "source": str(character.source) if character.source else None,
            }
            if args.json:
                print(json.dumps(info, ensure_ascii=False, indent=2))
            else:
                print(f"{info['name']}" + (f" ({info['nickname']})" if info["nickname"] else "") + f"  [{info['spec']}]")
                print(f"greetings: {len(info['greetings'])}, lorebook entries: {info['lorebook_entries']}")
                print(f"\nsystem prompt as built:\n{system}")
            return 0
        if args.persona_command == "import":
            character, target = import_character(Path(args.card).expanduser(), personas)
            print(f"imported {character.name} -> {target}\nuse it: [persona] card = \"{character.name}\"")
            return 0
        if args.persona_command == "export":
            character = load_character(resolve_card(args.name, personas))
            output = Path(args.output) if args.output else Path(f"{slug(character.name)}.{args.format}")
            if args.format == "png":
                output.write_bytes(character.export_png())
            else:
                output.write_text(json.dumps(character.to_v3(), ensure_ascii=False, indent=2), encoding="utf-8")
            print(f"wrote {output}")
            return 0
    except CardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_FAILURE
    _parser().parse_args(["persona", "--help"])
    return EXIT_USAGE


def _game(settings: Settings, args: argparse.Namespace) -> int:
    from .app import setup_logging
    from .games.demo import run_demo

    if args.game_command != "demo":
        _parser().parse_args(["game", "--help"])
    setup_logging(settings, console_level="WARNING")
    try:
        stats = asyncio.run(run_demo(settings, rounds=args.rounds, connect=args.connect))
    except KeyboardInterrupt:
        return 130
    except (aiohttp_errors() + (ConnectionError, TimeoutError)) as exc:
        print(f"error: the game lost its connection ({exc}); is the companion running with [games] enabled?", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001
        message = _user_error(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"played {stats.rounds} game(s), {stats.moves} moves, {stats.rejected} rejected moves: {', '.join(stats.results)}")
    return 0


def aiohttp_errors() -> tuple[type[BaseException], ...]:
    import aiohttp

    return (aiohttp.ClientError,)


async def _doctor(settings: Settings) -> int:
    from .app import default_model_notice, load_persona
    from .llm import create_llm

    problems = 0

    def report(ok: bool, what: str, fix: str = "") -> None:
        nonlocal problems
        problems += 0 if ok else 1
        print(f"[{'ok' if ok else 'FAIL'}] {what}" + (f"\n       fix: {fix}" if fix and not ok else ""))

    report(True, f"config: {settings.source or 'no file, embedded defaults'}")
    data = settings.data_path()
    try:
        data.mkdir(parents=True, exist_ok=True)
        probe = data / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
        report(True, f"data folder {data} is writable")
    except OSError as exc:
        report(False, f"data folder {data}: {exc.strerror}", "set [companion] data_dir or COMPANION_DATA_DIR to a writable folder")
    try:
        character = load_persona(settings)
        report(True, f"character: {character.name}")
    except Exception as exc:  # noqa: BLE001
        report(False, f"character card: {exc}", "fix [persona] card, or leave it empty for the default character")
    llm = create_llm(settings)
    try:
        async with asyncio.timeout(settings.llm.openai.connect_timeout + 5):
            status = await llm.check()
        report(True, f"LLM {llm.name}: {status}")
    except Exception as exc:  # noqa: BLE001
        report(False, f"LLM {llm.name}: {exc}", "see [llm] in `companion config example`")
    finally:
        await llm.close()
    if notice := default_model_notice(settings):
        print(f"[note] {notice}")
    if settings.web.enabled:
        free = _port_free(settings.web.host, settings.web.port)
        report(
            free,
            f"web port {settings.web.host}:{settings.web.port} is {'free' if free else 'in use'}",
            "stop the other program (maybe a companion already running) or set [web] port",
        )
    await _doctor_extras(settings, report)
    print("all good" if problems == 0 else f"{problems} problem(s) to fix")
    return 0 if problems == 0 else EXIT_FAILURE


async def _doctor_extras(settings: Settings, report: Any) -> None:
    """Checks for the parts that are switched on: voice, avatar, Discord, stream, plugins, MCP."""
    import shutil
    from importlib.util import find_spec

    if settings.voice.enabled:
        for module, package in (("faster_whisper", "faster-whisper"), ("piper", "piper-tts"), ("sounddevice", "sounddevice")):
            report(find_spec(module) is not None, f"voice: {package} installed", "pip install 'companion[voice]' (./run.sh does)")
        if settings.voice.tts.provider == "espeak":
            report(shutil.which("espeak-ng") is not None, "voice: espeak-ng installed", "sudo apt-get install espeak-ng")
        try:
            from .voice.playback import _sounddevice

            sd = _sounddevice()
            report(True, f"voice: audio devices found (default input/output {sd.default.device})")
        except Exception as exc:  # noqa: BLE001
            report(False, f"voice: {exc}", "connect a microphone and speaker, or use `companion voice -i in.wav -o out.wav`")
    if settings.avatar.enabled:
        from .avatar.cli import resolve_url

        url = await resolve_url(settings)
        try:
            import websockets

            async with asyncio.timeout(3):
                async with websockets.connect(url):
                    pass
            report(True, f"avatar: VTube Studio answers at {url}")
        except Exception as exc:  # noqa: BLE001
            report(False, f"avatar: VTube Studio not reachable at {url} ({type(exc).__name__})",
                   "start VTube Studio and turn on Settings > 'Start API (allow plugins)', or fix [avatar] url")
    if settings.discord.enabled:
        report(find_spec("discord") is not None, "discord: discord.py installed", "pip install 'companion[discord]'")
        report(bool(settings.discord_token()), f"discord: bot token set ({settings.discord.token_env})", "export DISCORD_TOKEN=... (README, Discord)")
    if settings.stream.twitch.enabled:
        tokens = settings.data_path() / "twitch_tokens.json"
        report(bool(settings.stream.twitch.client_id), "twitch: client_id set", "set [stream.twitch] client_id (dev.twitch.tv/console)")
        report(tokens.exists(), f"twitch: login stored in {tokens}", "run `companion stream twitch-login`")
    if settings.stream.youtube.enabled:
        import os

        report(bool(os.environ.get(settings.stream.youtube.api_key_env)), f"youtube: API key in {settings.stream.youtube.api_key_env}",
               f"export {settings.stream.youtube.api_key_env}=... (Google Cloud console, YouTube Data API v3)")
    for name, server in settings.tools.mcp.items():
        if server.command:
            report(shutil.which(server.command) is not None, f"mcp {name}: command {server.command!r} found", "install it or fix [tools.mcp] command")
    if settings.plugins.enabled:
        from .plugins import discover_plugins, project_plugins_dir, user_plugins_dir

        names = discover_plugins([project_plugins_dir(), user_plugins_dir(settings)], settings.plugins.enabled)
        for plugin in settings.plugins.enabled:
            report(plugin in names, f"plugin {plugin}: found", "check the name in `companion plugins list`")


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
