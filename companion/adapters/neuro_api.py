"""The AI side of the Neuro game API: games connect here and the companion plays.

Each websocket connection is one game with its own actions, context and at
most one force in flight (a new force replaces the old, per BEST_PRACTICES).
State is per connection, so two games registering the same action names never
collide. Nothing a game sends can crash the server: malformed frames are
logged (once per kind per connection) and ignored.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from companion.adapters.listener import BoundedRunner, bound_port
from companion.config import GamesSection
from companion.games.decider import ActionDecider, Decision
from companion.games.protocol import (
    ActionResult,
    Context,
    ForceAction,
    GameState,
    ProtocolError,
    RegisterActions,
    Startup,
    UnregisterActions,
    action_message,
    parse_message,
    startup_ack,
)
from companion.runtime.bus import EventBus
from companion.runtime.events import (  # the game events live with all others in events.py; re-exported here
    Event,
    GameActionFinished,
    GameActionSent,
    GameConnected,
    GameContextReceived,
    GameDisconnected,
    GameForceReceived,
    SentenceReady,
    TurnEnded,
)

log = logging.getLogger(__name__)


# Something that makes the companion say a line about the game (conversation, text).
Commentator = Callable[[str, str], Awaitable[None]]


@dataclass
class GameConnection:
    """One connected game: its state, its pending force and action results."""

    id: str
    ws: web.WebSocketResponse
    state: GameState = field(default_factory=GameState)
    force_task: asyncio.Task[None] | None = None
    force: ForceAction | None = None
    pending: dict[str, asyncio.Future[ActionResult]] = field(default_factory=dict)
    queued_context: list[Context] = field(default_factory=list)
    registered: asyncio.Event = field(default_factory=asyncio.Event)
    warned: set[str] = field(default_factory=set)
    commenting: bool = False

    @property
    def game(self) -> str:
        return self.state.game or "unknown game"


class NeuroGameServer:
    """Websocket server speaking the Neuro game API, deciding with an ActionDecider."""

    def __init__(
        self,
        decider: ActionDecider,
        config: GamesSection,
        *,
        bus: EventBus | None = None,
        token: str | None = None,
        display_name: str = "companion",
        commentator: Commentator | None = None,
        interrupt: Callable[[str], object] | None = None,
        is_speaking: Callable[[], bool] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.decider = decider
        self.config = config
        self.bus = bus or EventBus()
        self.token = token
        self.display_name = display_name
        self.commentator = commentator
        self.interrupt = interrupt
        self.is_speaking = is_speaking
        self.rng = rng or random.Random()
        self.connections: dict[str, GameConnection] = {}
        self._ids = itertools.count(1)
        self._runner: BoundedRunner | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.port: int | None = None

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._ws)
        self._runner = BoundedRunner(app, max_connections=self.config.max_connections, header_timeout=10.0, shutdown_timeout=0.25)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = bound_port(self._runner, self.config.port)
        log.info("game server on ws://%s:%s (set NEURO_SDK_WS_URL for your game)", self.config.host, self.port)

    async def stop(self) -> None:
        for conn in list(self.connections.values()):
            self._cancel_force(conn)
        if self.connections:  # every game at once, each given a moment to answer the close
            await asyncio.wait(
                [asyncio.ensure_future(c.ws.close(code=1001, message=b"server shutting down")) for c in self.connections.values()],
                timeout=0.3,
            )
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- connection -----------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in {o.rstrip("/") for o in self.config.allowed_origins}:
            # A web page the user happens to have open must not play (or inject context) as a game.
            log.warning("games: refused a websocket from the web page %s (allow it in [games] allowed_origins)", origin)
            return web.json_response({"error": "browser pages may not connect unless [games] allowed_origins lists them"}, status=403)
        if self.token:
            given = request.query.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.json_response({"error": "missing or wrong token: add ?token=... to NEURO_SDK_WS_URL"}, status=401)
        ws = web.WebSocketResponse(max_msg_size=self.config.max_frame_bytes, heartbeat=30)
        await ws.prepare(request)
        conn = GameConnection(id=f"g{next(self._ids)}", ws=ws)
        self.connections[conn.id] = conn
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_frame(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._warn(conn, "binary", "binary frame ignored: the Neuro API uses text frames")
                elif msg.type == WSMsgType.ERROR:
                    self._warn(conn, "ws-error", f"connection error: {ws.exception()}")
        finally:
            self._cancel_force(conn)
            self.connections.pop(conn.id, None)
            self.bus.publish(GameDisconnected(conn.id, conn.game))
            log.info("game %s (%s) disconnected", conn.game, conn.id)
        return ws

    def _warn(self, conn: GameConnection, kind: str, text: str) -> None:
        """Log a game's mistake once per kind per connection: a looping game must not flood the log."""
        if kind not in conn.warned:
            conn.warned.add(kind)
            log.warning("game %s (%s): %s", conn.game, conn.id, text)

    async def _on_frame(self, conn: GameConnection, raw: str) -> None:
        try:
            message = parse_message(raw)
        except ProtocolError as exc:
            self._warn(conn, str(exc).split(":")[0], f"ignored a message: {exc}")
            return
        if isinstance(message, Startup):
            self._cancel_force(conn)
            conn.state.startup(message.game)
            conn.registered.clear()
            await self._send(conn, startup_ack(uuid.uuid4().hex, self.display_name))
            self.bus.publish(GameConnected(conn.id, message.game))
            log.info("game %s connected (%s)", message.game, conn.id)
            return
        if not conn.state.game:
            conn.state.game = message.game  # lenient: a game that skipped startup still plays
        if isinstance(message, Context):
            if conn.pending:
                conn.queued_context.append(message)  # BEST_PRACTICES: hold context while a result is pending
            else:
                self._apply_context(conn, message)
        elif isinstance(message, RegisterActions):
            for action in message.actions:
                if action.schema is not None and action.schema.get("type") not in (None, "object"):
                    self._warn(conn, f"schema-{action.name}", f"action {action.name!r}: schema should be of type object")
            _added, refused = conn.state.register(message.actions)
            for name, why in refused.items():
                self._warn(conn, f"refused-{name}", f"action {name!r} refused: its schema {why}; fix the schema and register it again")
            conn.registered.set()
        elif isinstance(message, UnregisterActions):
            conn.state.unregister(message.action_names)
        elif isinstance(message, ForceAction):
            self._start_force(conn, message)
        elif isinstance(message, ActionResult):
            future = conn.pending.get(message.id)
            if future is None or future.done():
                log.debug("game %s: result for unknown or expired action %s ignored", conn.game, message.id)
            else:
                future.set_result(message)

    def _apply_context(self, conn: GameConnection, message: Context) -> None:
        conn.state.add_context(message.message)
        self.bus.publish(GameContextReceived(conn.id, conn.game, message.message, message.silent))
        if not message.silent:
            self._maybe_comment(conn, message.message)

    def _flush_context(self, conn: GameConnection) -> None:
        queued, conn.queued_context = conn.queued_context, []
        for message in queued:
            self._apply_context(conn, message)

    # -- forces ---------------------------------------------------------------

    def _cancel_force(self, conn: GameConnection) -> None:
        if conn.force_task is not None and not conn.force_task.done():
            conn.force_task.cancel()
        conn.force_task = None
        conn.force = None
        for future in conn.pending.values():
            if not future.done():
                future.cancel()
        conn.pending.clear()

    def _start_force(self, conn: GameConnection, force: ForceAction) -> None:
        self._cancel_force(conn)  # one force at a time: the newest wins
        conn.force = force
        self.bus.publish(GameForceReceived(conn.id, conn.game, force.query, force.priority, force.action_names))
        if force.priority in ("high", "critical") and self.interrupt is not None:
            self.interrupt(f"game:{conn.game}")  # stop talking, act now
        conn.force_task = asyncio.create_task(self._run_force(conn, force), name=f"force-{conn.id}")

    async def _run_force(self, conn: GameConnection, force: ForceAction) -> None:
        feedback: str | None = None
        try:
            for round_ in range(self.config.action_retries + 1):
                actions = conn.state.available(force.action_names)
                while not actions:
                    if all(name in conn.state.refused for name in force.action_names):
                        log.warning(
                            "game %s: force %r names only refused actions %s: no action can be sent (see the refusal above)",
                            conn.game, force.query[:60], list(force.action_names),
                        )
                        return
                    # A force may name actions the game registers a moment later.
                    self._warn(conn, "force-unknown", f"force names unregistered actions {list(force.action_names)}; waiting")
                    conn.registered.clear()
                    await conn.registered.wait()
                    actions = conn.state.available(force.action_names)
                if round_ == 0 and force.priority in ("low", "medium"):
                    await self._let_sentence_finish()
                decision = await self.decider.decide(
                    conn.game,
                    actions,
                    query=force.query,
                    state=force.state,
                    context=tuple(conn.state.context),
                    feedback=feedback,
                )
                if conn.force is not force:
                    return
                result = await self._send_action(conn, decision)
                if result is None:
                    return  # timed out: give up on this force, the game may force again
                if result.success:
                    if not force.ephemeral_context:
                        conn.state.add_context(f"{self.display_name} did {decision.name}: {result.message or 'ok'}")
                    return
                feedback = result.message or "the game rejected the action"
                log.info("game %s: action %s failed (%s); retry %d", conn.game, decision.name, feedback, round_ + 1)
        except asyncio.CancelledError:
            raise
        except Exception:  # never let one force take the connection down
            log.exception("game %s: force failed", conn.game)
        finally:
            if conn.force is force:
                conn.force = None

    async def _let_sentence_finish(self, limit: float = 10.0) -> None:
        """Low-priority forces wait for the sentence being said (high and critical interrupt instead)."""
        if self.is_speaking is None or not self.is_speaking():
            return
        try:
            await self.bus.wait_for(Event, lambda e: isinstance(e, (SentenceReady, TurnEnded)), timeout=limit)
        except TimeoutError:
            pass

    async def _send_action(self, conn: GameConnection, decision: Decision) -> ActionResult | None:
        action_id, frame = action_message(decision.name, decision.data)
        future: asyncio.Future[ActionResult] = asyncio.get_running_loop().create_future()
        conn.pending[action_id] = future
        self.bus.publish(
            GameActionSent(
                conn.id, conn.game, action_id, decision.name, decision.data, decision.fallback, decision.attempts,
                round(decision.seconds * 1000, 3),
            )
        )
        try:
            await self._send(conn, frame)
            result = await asyncio.wait_for(future, self.config.result_timeout)
        except TimeoutError:
            log.warning("game %s: no result for action %s within %g s", conn.game, decision.name, self.config.result_timeout)
            self.bus.publish(GameActionFinished(conn.id, conn.game, action_id, decision.name, None, "timeout"))
            return None
        finally:
            conn.pending.pop(action_id, None)
            self._flush_context(conn)
        self.bus.publish(
            GameActionFinished(conn.id, conn.game, action_id, decision.name, result.success, result.message or "")
        )
        if result.message:
            self._maybe_comment(conn, f"I did {decision.name}: {result.message}")
        return result

    async def _send(self, conn: GameConnection, frame: str) -> None:
        if conn.ws.closed:
            return
        try:
            await conn.ws.send_str(frame)
        except (ConnectionError, RuntimeError):
            pass

    # -- talking about it -------------------------------------------------------

    def _maybe_comment(self, conn: GameConnection, text: str) -> None:
        if self.commentator is None or conn.commenting or self.rng.random() >= self.config.chattiness:
            return
        conn.commenting = True  # one comment at a time per game, so events never pile up

        async def comment() -> None:
            try:
                await self.commentator(f"game:{conn.game}", text)  # type: ignore[misc]
            except Exception:
                log.exception("game commentary failed")
            finally:
                conn.commenting = False

        task = asyncio.create_task(comment())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
