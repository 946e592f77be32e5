"""Builds the companion from settings, runs its adapters, shuts down cleanly.

``companion run`` is meant to stay up for days, so start-up problems become
one clear line, and SIGINT/SIGTERM stop everything within about 2 s with
history flushed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import companion.games  # noqa: F401 - each adapter package declares its platforms (core.platforms)
import companion.minecraft  # noqa: F401
import companion.stream  # noqa: F401
import companion.voice  # noqa: F401
from companion.character.persona import Character, default_character, load_character, resolve_card
from companion.config import Settings, masking
from companion.config.datadir import prepare_data_dir
from companion.core.engine import Companion
from companion.core.history import HistoryStore
from companion.core.moderation import Moderator
from companion.llm import create_llm
from companion.llm.base import Priority
from companion.pet.launch import CHILD_ENV as PET_CHILD_ENV
from companion.runtime.allocations import ENV as ALLOCATIONS_ENV
from companion.runtime.allocations import limit_malloc_arenas, track_allocations, trim_malloc_periodically
from companion.runtime.bus import EventBus
from companion.runtime.events import AdapterStatus
from companion.runtime.supervisor import FunctionAdapter, LoopLag, Supervisor

if TYPE_CHECKING:
    from companion.adapters.neuro_api import NeuroGameServer
    from companion.group.cast import Cast
    from companion.llm.base import LLM
    from companion.memory.embed import Embedder
    from companion.memory.manager import MemoryManager
    from companion.voice.build import VoiceModels

log = logging.getLogger("companion")

SHUTDOWN_SECONDS = 2.0


def setup_logging(settings: Settings, *, console_level: str | None = None, to_file: bool = True) -> Path | None:
    """Console at the configured level, plus a rotating file in the data folder."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_companion", False):
            root.removeHandler(handler)
            handler.close()
    masking.register(settings.secrets())
    secret_filter = masking.MaskingFilter()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level or settings.companion.log_level)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handlers: list[logging.Handler] = [console]
    log_file = None
    if to_file:
        log_dir = settings.data_path() / "logs"
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            log_file = log_dir / "companion.log"
            file_handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
            file_handler.setLevel(logging.INFO)
            file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            handlers.append(file_handler)
        except OSError as exc:
            print(f"warning: cannot write logs to {log_dir}: {exc}", file=sys.stderr)
            log_file = None
    for handler in handlers:
        handler.addFilter(secret_filter)
        handler._companion = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if "DEBUG" in (settings.companion.log_level, console_level) else logging.INFO)
    for noisy in ("aiohttp.access", "httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return log_file


def load_persona(settings: Settings) -> Character:
    """The configured character: a card file, an imported character's name, or the default."""
    if not settings.persona.card:
        return default_character()
    return load_character(resolve_card(settings.persona.card, settings.data_path() / "personas"))


def build_embedder(settings: Settings) -> "Embedder":
    """The configured memory embedder (not started)."""
    from companion.memory.embed import OpenAIEmbedder, SentenceTransformerEmbedder

    cfg = settings.memory
    if cfg.embedder == "openai":
        return OpenAIEmbedder(
            cfg.embeddings_base_url or settings.llm.openai.base_url,
            cfg.embedder_model or "nomic-embed-text",
            settings.openai_api_key(),
        )
    return SentenceTransformerEmbedder(cfg.embedder_model)


def build_memory(settings: Settings, llm: "LLM", character: Character, embedder: "Embedder | None" = None) -> "MemoryManager | None":
    """Long-term memory as configured (None when disabled); ``embedder``: one already built (a group shares it)."""
    cfg = settings.memory
    if not cfg.enabled:
        return None
    from companion.memory.embed import Borrowed
    from companion.memory.manager import MemoryManager
    from companion.memory.store import MemoryStore, RankWeights

    embedder = Borrowed(embedder) if embedder is not None else build_embedder(settings)
    store = MemoryStore(settings.data_path() / "memory.sqlite3", weights=RankWeights(half_life_days=cfg.half_life_days))
    return MemoryManager(
        store,
        embedder,
        llm,
        character=character.display_name,
        recall_k=cfg.recall_k,
        budget_chars=cfg.budget_chars,
        extract=cfg.extract,
        summary_every=cfg.summary_every,
        strict=default_model_notice(settings) is not None,  # the embedded model: learn only what people said
    )


def build_companion(settings: Settings, bus: EventBus | None = None) -> Companion:
    """Wire the configured parts together (nothing is started or loaded yet)."""
    masking.register(settings.secrets())  # before anything can show an error that echoes one
    prepare_data_dir(settings.data_path())
    llm = create_llm(settings)
    character = load_persona(settings)
    return Companion(
        settings,
        llm=llm,
        character=character,
        history=HistoryStore(settings.data_path() / "history.sqlite3"),
        bus=bus,
        memory=build_memory(settings, llm, character),
        moderator=build_moderator(settings),
    )


def build_group(settings: Settings, bus: EventBus | None = None) -> "Cast":
    """The characters of ``[[characters]]`` (two or more) on one stage, nothing started yet."""
    from companion.group.build import build_cast
    from companion.voice.build import build_tts

    return build_cast(settings, lambda own: build_companion(own, bus), build_memory, build_tts)


def build_moderator(settings: Settings) -> Moderator | None:
    """[stream] blocked_terms: every sentence she says, wherever, is checked before anyone hears or reads it."""
    cfg = settings.stream
    if not cfg.blocked_terms:
        return None
    return Moderator(cfg.blocked_terms, blocked_users=cfg.blocked_users, replacement=cfg.replacement)


def default_model_notice(settings: Settings) -> str | None:
    """The tiny embedded model must never be mistaken for the real experience."""
    llm = settings.llm
    embedded = (llm.provider == "llamacpp" and not llm.llamacpp.model) or (
        llm.provider == "transformers" and not llm.transformers.model
    )
    if embedded:
        runtime = "llama.cpp" if llm.provider == "llamacpp" else "transformers"
        return (
            f"using the embedded SmolLM2-135M-Instruct through {runtime}: tiny and shallow, meant for trying things out. "
            "For real conversations get a model sized for this machine: `companion model list`, then "
            "`companion model pull NAME` and `companion model use NAME`; or `companion init llm` finds Ollama and LM Studio."
        )
    return None


async def local_server_hint(settings: Settings) -> str | None:
    """On the embedded model, say so when Ollama or LM Studio already runs here with a chat model to switch to."""
    if default_model_notice(settings) is None:
        return None
    from companion.init.choose import is_chat_model, pick_model
    from companion.init.detect import detect_servers, total_memory_bytes

    try:
        servers = await detect_servers(timeout=0.5)
    except Exception:  # noqa: BLE001 - a hint is never a reason to fail
        return None
    for server in servers:
        best = pick_model([m for m in server.models if is_chat_model(m.name)], total_memory_bytes())
        if best is not None:
            return (f"{server.label} is running with {best.name} (and {len(server.models) - 1} other model(s)): "
                    "switch to it with `companion init llm` or on the /control page")
    return None


def build_game_server(companion: Companion, settings: Settings, *, port: int | None = None, cast: "Cast | None" = None) -> "NeuroGameServer":
    """The Neuro game API server, deciding with the companion's LLM and commenting in its voice (in a group, the
    host plays and a co-host comments; the host may answer within [group] banter)."""
    from companion.adapters.neuro_api import NeuroGameServer
    from companion.games.decider import ActionDecider

    cfg = settings.games if port is None else settings.games.model_copy(update={"port": port})
    decider = ActionDecider(
        companion.llm,
        character=companion.character.name,
        attempts=cfg.decision_attempts,
        timeout=cfg.decision_timeout,
    )

    async def comment(conversation: str, text: str) -> None:
        game = conversation.split(":", 1)[-1]
        options: dict[str, Any] = {
            "conversation_id": conversation, "speaker_id": conversation, "speaker_name": game, "platform": "game",
            "priority": Priority.COMMENTARY,  # a forced action or a person's message preempts it
        }
        if cast is not None:
            await cast.respond(f"(in the game {game}) {text}", first=cast.commentator(), **options)
            return
        await companion.respond(f"(in the game {game}) {text}", **options)

    return NeuroGameServer(
        decider,
        cfg,
        bus=companion.bus,
        token=settings.games_token(),
        display_name=companion.character.name,
        commentator=comment,
        interrupt=companion.interrupt,
        is_speaking=companion.is_speaking,
    )


class Extensions:
    """Plugins and MCP servers of one running companion; ``close()`` undoes them."""

    def __init__(self, companion: Companion, settings: Settings, supervisor: Supervisor | None = None) -> None:
        from companion.plugins import PluginManager
        from companion.tools.registry import ToolRegistry

        self.settings = settings
        if companion.tools is None:
            companion.tools = ToolRegistry()
        self.plugins = PluginManager(companion)
        self.companion = companion
        self.mcp: list[Any] = []
        self.supervisor = supervisor or Supervisor(companion.health)
        self._own_supervisor = supervisor is None

    async def start(self) -> None:
        await self.plugins.load_enabled()
        if self.settings.tools.mcp:
            try:
                from companion.tools.mcp import MCPServer
            except ImportError as exc:  # pragma: no cover - mcp is imported lazily inside
                log.error("MCP servers are off: %s", exc)
                return
            for name, cfg in self.settings.tools.mcp.items():
                server = MCPServer(name, cfg, self.companion.tools, self.companion.bus)  # type: ignore[arg-type]
                self.mcp.append(server)
                self.supervisor.start(FunctionAdapter(f"mcp:{name}", server.run, max_delay=server.max_delay))

    async def close(self) -> None:
        if self._own_supervisor:
            await self.supervisor.stop(1.0)
        await self.plugins.unload_all()


async def watch_llm(companion: Companion, stop: asyncio.Event, interval: float = 30.0) -> None:
    """The LLM's health on the board: checked every ``interval`` seconds; an outage logged once, the return too."""
    from companion.llm.base import LLMError

    down = False
    while not stop.is_set():
        try:
            async with asyncio.timeout(10):
                detail = await companion.llm.check()
        except (LLMError, TimeoutError, OSError) as exc:
            message = str(exc) or "no answer within 10 s"
            if not down:
                log.warning("llm: %s; replies fail until it is back", message)
            down = True
            companion.bus.publish(AdapterStatus("llm", "reconnecting", message))
        else:
            if down:
                log.info("llm: back (%s)", detail)
            down = False
            companion.bus.publish(AdapterStatus("llm", "connected", detail or companion.llm.name))
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


class InstanceFile:
    """``run.json`` in the data folder: where a running companion listens, so `companion status` can ask it."""

    def __init__(self, data: Path) -> None:
        self.path = data / "run.json"

    def write(self, **ports: int | None) -> None:
        try:
            self.path.write_text(json.dumps({"pid": os.getpid(), **ports}), encoding="utf-8")
        except OSError as exc:
            log.debug("cannot write %s: %s", self.path, exc)

    def remove(self) -> None:
        try:
            if json.loads(self.path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError, AttributeError):
            pass


def _stream_parts(companion: Companion, settings: Settings, supervisor: Supervisor, cast: "Cast | None" = None) -> Any:
    """Twitch and/or YouTube chat into one StreamChat; each platform is its own supervised adapter (one failing
    does not stop the others, and each reconnects on the supervisor's delays). Returns the StreamChat."""
    from companion.stream.chat import StreamChat
    from companion.stream.twitch import TokenStore, TwitchEventSub
    from companion.stream.youtube import YouTubeChat

    chat = StreamChat(companion, settings, cast=cast)
    if cast is not None:
        cast.quiet = lambda: settings.stream.quiet  # quiet mode: each answers when asked, no banter

    def status(name: str) -> Any:
        return lambda state, detail: companion.bus.publish(AdapterStatus(name, state, detail))

    cfg = settings.stream
    if cfg.twitch.enabled:
        twitch = TwitchEventSub(
            cfg.twitch, TokenStore(settings.data_path() / "twitch_tokens.json"), chat.ingest, on_status=status("twitch")
        )
        if cfg.twitch.post_replies:
            async def post(platform: str, text: str) -> None:
                await twitch.send_chat(text)

            chat.posters["twitch"] = post
        supervisor.start(FunctionAdapter("twitch", twitch.run))
    if cfg.youtube.enabled:
        youtube = YouTubeChat(cfg.youtube, chat.ingest, on_status=status("youtube"))
        supervisor.start(FunctionAdapter("youtube", youtube.run, first_delay=youtube.first_delay))
    return chat


class Running:
    """What the parts of one ``companion run`` share, and what shutdown must stop."""

    def __init__(self, companion: Companion, settings: Settings, supervisor: Supervisor, voice_models: VoiceModels) -> None:
        self.companion = companion
        self.settings = settings
        self.supervisor = supervisor
        self.voice_models = voice_models
        self.ports: dict[str, int | None] = {}  # written to run.json for `companion status`
        self.servers: list[Any] = []  # started servers, stopped (last first) at shutdown
        self.tasks: list[asyncio.Task[Any]] = []  # helpers cancelled at shutdown
        self.cast: Cast | None = None  # [[characters]]: every character, the host being ``companion``

    async def serve(self, name: str, server: Any, url: str) -> int:
        """Start a server of ours (``start``/``stop``/``port``; host from ``[name]``): up until shutdown."""
        await server.start()
        self.servers.append(server)
        self.ports[f"{name}_port"] = server.port
        host = getattr(self.settings, name).host
        self.supervisor.listening(name, url.format(host=host, port=server.port))
        return int(server.port)

    def supervise(self, name: str, run: Any, *, max_delay: float | None = None) -> None:
        """Run ``run(stop_event)`` under the supervisor: restarted with backoff, its health on /health."""
        self.supervisor.start(FunctionAdapter(name, run, max_delay=max_delay))

    def say(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Part:
    """One thing ``companion run`` can start: on when ``enabled(settings)``; ``start`` sets it going."""

    name: str
    enabled: Callable[[Settings], bool]
    start: Callable[[Running], Awaitable[None]]


async def _start_web(r: Running) -> None:
    from companion.adapters.web import WebChat

    port = await r.serve("web", WebChat(r.companion, r.settings, voice_models=r.voice_models, cast=r.cast), "http://{host}:{port}/")
    r.say(f"{r.companion.character.name} is listening: open http://127.0.0.1:{port}/ in a browser (Ctrl+C to stop)")


async def _start_games(r: Running) -> None:
    port = await r.serve("games", build_game_server(r.companion, r.settings, cast=r.cast), "ws://{host}:{port}")
    r.say(f"games can connect: NEURO_SDK_WS_URL=ws://127.0.0.1:{port}")


async def _start_avatar(r: Running) -> None:
    try:
        from companion.avatar.avatar import RETRY_CAP_S, Avatar
        from companion.avatar.cli import resolve_url, token_path
        from companion.group.build import host_index, slug
    except ImportError as exc:
        log.error("avatar is off: %s; pip install 'companion[avatar]'", exc)
        return
    avatars: list[Avatar] = []  # one, made on the first run: finding VTube Studio may take a moment

    async def run(stop: asyncio.Event) -> None:
        if not avatars:
            host = r.settings.characters[host_index(r.settings)] if r.cast is not None else None
            url = host.vts_url if host is not None and host.vts_url else await resolve_url(r.settings)
            avatars.append(Avatar(
                r.settings.avatar, r.companion.bus, r.companion.audio_level, token_path=token_path(r.settings), url=url,
                character=r.companion.character.display_name if r.cast is not None else "", name="avatar",
            ))
        await avatars[0].run(stop)

    r.supervise("avatar", run, max_delay=RETRY_CAP_S)
    if r.cast is None:
        return
    for entry, name in zip(r.settings.characters, r.cast.names, strict=True):  # a co-host's own VTube Studio model
        if entry.vts_url and name != r.companion.character.display_name:
            own = Avatar(
                r.settings.avatar, r.companion.bus, r.companion.audio_level, url=entry.vts_url, character=name,
                token_path=token_path(r.settings).with_name(f"vtube_studio_token_{slug(name)}"),
            )
            r.supervise(own.name, own.run, max_delay=RETRY_CAP_S)


async def _start_stream(r: Running) -> None:
    chat = _stream_parts(r.companion, r.settings, r.supervisor, r.cast)
    r.supervise("stream", lambda stop: chat.run(stop))


async def _start_discord(r: Running) -> None:
    from companion.adapters.discord.bot import run_discord

    r.supervise("discord", lambda stop: run_discord(r.companion, r.settings, stop, r.voice_models, r.cast))


async def _start_minecraft(r: Running) -> None:
    from companion.minecraft.adapter import MinecraftAdapter

    r.supervisor.start(MinecraftAdapter(r.companion, r.settings))


async def _start_voice(r: Running) -> None:
    from companion.voice.local import run_local_voice

    r.supervise("voice", lambda stop: run_local_voice(r.companion, r.settings, stop, r.voice_models, r.cast))
    r.say(f"{r.companion.character.name} is listening on the microphone")


async def _start_pet(r: Running) -> None:
    """Her desktop window ([pet] enabled): its own process (a GUI wants its main thread), closed at shutdown."""
    from companion.pet.launch import window_beside

    port = r.ports.get("web_port")
    if port is None:
        log.error("the desktop pet shows the web server's /pet page: set [web] enabled = true to open it")
        return
    r.tasks.append(asyncio.create_task(window_beside(r.settings, port), name="pet-window"))
    r.say(f"{r.companion.character.name} is on the desktop in her own window (close it any time; `companion pet` opens it again)")


# Everything `companion run` can start, in start order. A new adapter is one entry here and its own module.
PARTS: tuple[Part, ...] = (
    Part("web", lambda s: s.web.enabled, _start_web),
    Part("pet", lambda s: s.pet.enabled and not os.environ.get(PET_CHILD_ENV), _start_pet),  # not in one it started
    Part("games", lambda s: s.games.enabled, _start_games),
    Part("avatar", lambda s: s.avatar.enabled, _start_avatar),
    Part("stream", lambda s: s.stream.twitch.enabled or s.stream.youtube.enabled, _start_stream),
    Part("discord", lambda s: s.discord.enabled, _start_discord),
    Part("minecraft", lambda s: s.minecraft.enabled, _start_minecraft),
    Part("voice", lambda s: s.voice.enabled, _start_voice),
)


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Start everything configured and serve until SIGINT/SIGTERM (or ``stop`` is set).

    Every long-lived part runs under one Supervisor (restart with backoff,
    health on /health); shutdown gives all of it SHUTDOWN_SECONDS together.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
            pass
    notice = default_model_notice(settings)
    if notice:
        log.warning(notice)
        hint = await local_server_hint(settings)
        if hint:
            log.warning(hint)
    from companion.adapters.listener import raise_fd_limit
    from companion.voice.build import VoiceModels

    raise_fd_limit()  # many browser tabs, games and clients must never mean "too many open files"
    limit_malloc_arenas()  # days of uptime: glibc's per-thread arenas otherwise grow RSS with no object behind it
    from companion.group.build import is_group

    cast = build_group(settings) if is_group(settings) else None  # [[characters]]: a group on one stage
    companion = cast.host if cast is not None else build_companion(settings)
    settings = companion.settings  # in a group, the host's (its card)
    supervisor = Supervisor(companion.health)
    voice_models = VoiceModels(settings)  # one STT and one TTS for the microphone, the browser and Discord
    running = Running(companion, settings, supervisor, voice_models)
    running.cast = cast
    lag_task: asyncio.Task[None] | None = None
    extensions: Extensions | None = None
    instance = InstanceFile(settings.data_path())
    try:
        log.info("starting: character %s, LLM %s", companion.character.name, companion.llm.name)
        if cast is not None:
            log.warning(
                "[[characters]]: %s answer together in the web chat, stream chat, Discord (one bot, each line under its "
                "name), games (the host plays), `companion chat`, on the host's voices and on each VTube Studio model",
                " and ".join(cast.names),
            )
        if not await _start_or_stop((cast or companion).start(), stop):
            return
        supervisor.start(FunctionAdapter("llm", lambda s: watch_llm(companion, s)))
        parts = [part for part in PARTS if part.enabled(settings)]
        for part in parts:
            await part.start(running)
            if part.name in ("web", "games"):  # where it listens, as soon as it does: `companion status` reads it
                instance.write(web_port=running.ports.get("web_port"), games_port=running.ports.get("games_port"))
        instance.write(web_port=running.ports.get("web_port"), games_port=running.ports.get("games_port"))
        extensions = Extensions(companion, settings, supervisor)
        await extensions.start()
        if not parts:
            log.warning("no adapter is enabled ([web], [games] and [voice] are off); nothing to serve")
        # Measured from here: start-up (loading models, spawning servers) is not serving.
        companion.health.lag = LoopLag()
        lag_task = asyncio.create_task(companion.health.lag.run(supervisor.stop_event), name="loop-lag")
        running.tasks.append(asyncio.create_task(trim_malloc_periodically(supervisor.stop_event), name="malloc-trim"))
        if os.environ.get(ALLOCATIONS_ENV):  # bench/soak.py: where memory grows
            running.tasks.append(asyncio.create_task(track_allocations(supervisor.stop_event), name="allocations"))
        await stop.wait()
        log.info("shutting down")
    finally:
        began = loop.time()
        deadline = began + SHUTDOWN_SECONDS
        steps: list[str] = []

        def step(name: str) -> None:
            steps.append(f"{name} {loop.time() - began:.2f}")

        try:
            async with asyncio.timeout_at(deadline):
                # Stop replies first (queued ones and any still arriving too): one would otherwise hold its
                # conversation's turn past the deadline.
                for engine in cast.companions.values() if cast is not None else [companion]:
                    engine.shut_down_replies()
                await supervisor.stop(max(0.1, (deadline - loop.time()) / 2))
                step("adapters")
                if extensions is not None:
                    await extensions.close()
                for server in reversed(running.servers):
                    await server.stop()
                step("servers")
                await (cast or companion).close(memory_grace=max(0.0, min(0.5, deadline - loop.time() - 0.5)), whole_queue=False)
                await voice_models.close()
                step("core")
            log.info("stopped in %.2f s (%s)", loop.time() - began, ", ".join(steps))
        except TimeoutError:
            log.warning("shutdown took longer than %.0f s; exiting anyway", SHUTDOWN_SECONDS)
        if lag_task is not None:
            lag_task.cancel()
        for task in running.tasks:
            task.cancel()
        instance.remove()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass


async def _start_or_stop(starting: Awaitable[None], stop: asyncio.Event) -> bool:
    """Start the companion (loading models can take long); False when a stop came first."""
    start = asyncio.ensure_future(starting)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({start, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not start.done():
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        return False
    stopped.cancel()
    start.result()
    return True
