"""Setting up and checking: `companion init` (the guided set-up), `companion config check|example`, `companion doctor`."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

from companion.cli.common import EXIT_FAILURE, Command, show_help
from companion.config import Settings, resolve_config_path


def register(sub: Any) -> None:
    init = sub.add_parser("init", help="guided set-up: your model server, microphone and speaker, VTube Studio, your name")
    init.add_argument("step", nargs="?", choices=["language", "llm", "voice", "avatar", "character"], help="run one step only")
    init.add_argument("--yes", "-y", action="store_true", help="ask nothing: take what is detected (and the flags below)")
    init.add_argument("--llm", help="embedded, ollama, lmstudio, or the URL of an OpenAI-compatible server")
    init.add_argument("--model", help="the model to use on that server")
    init.add_argument("--language", help="the language she speaks (ISO code: zh, de, pt_BR...; auto: yours)")
    init.add_argument("--name", help="your name (the character calls you by it)")
    init.add_argument("--card", help="a character card file to import and use")
    init.add_argument("--voice", choices=["on", "off"], help="off: skip the device checks and leave voice off")
    init.add_argument("--avatar", help="off, or VTube Studio's ws:// URL (default: discover it)")
    init.set_defaults(handler=Command(lambda settings, args: _init(args), settings=False))

    config = sub.add_parser("config", help="check or print the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    config_sub.add_parser("check", help="validate the config file and report every problem").set_defaults(
        handler=Command(_config_check, data_dir=False)
    )
    config_sub.add_parser("example", help="print a commented companion.toml with every option").set_defaults(
        handler=Command(lambda settings, args: _config_example(), settings=False)
    )
    config.set_defaults(handler=Command(lambda settings, args: show_help("config"), settings=False))

    doctor = sub.add_parser("doctor", help="check config, providers, models and ports; print what to fix")
    doctor.add_argument(
        "--echo", action="store_true",
        help="also play a sentence on the speaker, record it, and say whether echo cancellation works in this room",
    )
    doctor.set_defaults(handler=Command(lambda settings, args: asyncio.run(_doctor(settings, echo=args.echo)), data_dir=False))


def _config_check(settings: Settings, args: argparse.Namespace) -> int:
    where = settings.source or "no config file (embedded defaults)"
    print(f"ok: {where} is valid")
    return 0


def _config_example() -> int:
    from companion.config import example_toml

    sys.stdout.write(example_toml())
    return 0


def _init(args: argparse.Namespace) -> int:
    from companion.init.wizard import STEPS, InitOptions, Wizard

    path, _explicit = resolve_config_path(args.config)
    options = InitOptions(
        config_path=path or Path("companion.toml"), steps=(args.step,) if args.step else STEPS, yes=args.yes, llm=args.llm, model=args.model,
        name=args.name, card=args.card, voice=args.voice, avatar=args.avatar, language=args.language,
    )
    try:
        return asyncio.run(Wizard(options).run())
    except (KeyboardInterrupt, EOFError):
        print("\nstopped; nothing was written", file=sys.stderr)
        return 130


async def _doctor(settings: Settings, *, echo: bool = False) -> int:
    from companion.app import default_model_notice, load_persona
    from companion.llm import create_llm

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
    if echo:
        await _doctor_echo(settings, report)
    print("all good" if problems == 0 else f"{problems} problem(s) to fix")
    return 0 if problems == 0 else EXIT_FAILURE


async def _doctor_echo(settings: Settings, report: Any) -> None:
    """`doctor --echo`: the room check (a sentence on the speaker, recorded, run through the canceller)."""
    from companion.init.devices import echo_check
    from companion.voice.echo import make_backend

    try:
        make_backend()
        room = await asyncio.to_thread(echo_check, settings)
    except Exception as exc:  # noqa: BLE001 - no device, no canceller: say what to do
        report(False, f"echo: the room check could not run ({exc})", "connect a speaker and a microphone; pip install 'companion[voice]'")
        return
    figure = "no figure" if room["erle_db"] is None else f"{room['erle_db']} dB"
    report(room["works"], f"echo: {room['verdict']} ({figure})", "use headphones, or turn the speakers down")


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
            from companion.voice.playback import _sounddevice

            sd = _sounddevice()
            report(True, f"voice: audio devices found (default input/output {sd.default.device})")
        except Exception as exc:  # noqa: BLE001
            report(False, f"voice: {exc}", "connect a microphone and speaker, or use `companion voice -i in.wav -o out.wav`")
    if settings.avatar.enabled:
        from companion.avatar.cli import resolve_url

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
        from companion.plugins import discover_plugins, project_plugins_dir, user_plugins_dir

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
