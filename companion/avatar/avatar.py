"""The avatar adapter: keeps VTube Studio connected and moves the model with the companion.

- Supervision (by the supervisor, this is an Adapter): connect when VTube Studio appears, reconnect with backoff,
  re-authenticate, re-subscribe, re-read hotkeys when a model loads; the
  companion keeps talking while the avatar is away (one log line, not a flood).
- Lip sync: one writer task injects ``MouthOpen`` at ``lipsync_hz`` from the
  level of the audio being heard; every controlled parameter is re-sent at
  least once a second; the mouth closes when speech ends or is cut off.
- Expressions and states: emotion tags and idle/listening/thinking/speaking
  trigger hotkeys (or expression files), with a per-hotkey cooldown and the
  queue/cooldown errors absorbed quietly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from companion.avatar.client import AvatarAuthError, AvatarError, AvatarUnavailable, VTSClient
from companion.avatar.lipsync import MouthEnvelope
from companion.avatar.protocol import HOTKEY_BUSY_ERRORS, PARAM_CONTROLLED_BY_OTHER_PLUGIN, ApiError, Hotkey, default_emotion_map, find_hotkey
from companion.avatar.states import AvatarStates
from companion.core.audio_level import AudioLevel
from companion.runtime.events import AdapterStatus, EmotionCue, SpeechStarted, TurnEnded, TurnStarted
from companion.runtime.supervisor import Adapter, RetryLater
from companion.runtime.tasks import spawn

if TYPE_CHECKING:
    from companion.config import AvatarSection
    from companion.runtime.bus import EventBus

log = logging.getLogger(__name__)

__all__ = ["Avatar"]

KNOWN_EMOTIONS = ["happy", "sad", "angry", "surprised", "embarrassed", "thinking", "excited", "scared", "love", "neutral"]
KEEPALIVE = 0.5  # seconds between re-sends of an unchanged parameter (VTube Studio drops it after 1 s)


RETRY_CAP_S = 4.0  # seconds between reconnection attempts to VTube Studio, at most

class Avatar(Adapter):
    name = "avatar"
    max_delay = RETRY_CAP_S

    def __init__(
        self, cfg: "AvatarSection", bus: "EventBus", level: AudioLevel, *, token_path: Any, url: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, character: str = "", name: str = "",
    ) -> None:
        self.cfg = cfg
        # In a group ([[characters]]), each character's model is its own Avatar: it moves for her lines only.
        self.character = character
        self.on_stage = ""  # who speaks now (TurnStarted.character)
        self.name = name or (f"avatar:{character}" if character else "avatar")  # its line on /health
        self.clock = level.clock  # lip sync reads the level on the clock it was recorded with
        self.sleep = sleep
        self.bus = bus
        self.level = level
        self.client = VTSClient(
            url or cfg.url, token_path=token_path, plugin_name=cfg.plugin_name, developer=cfg.developer
        )
        self.hotkeys: list[Hotkey] = []
        self.emotion_map: dict[str, Hotkey] = {}
        self.mouth = MouthEnvelope(gain=cfg.mouth_gain)
        self.injections = 0  # requests sent (for tests and benches)
        self.injections_answered = 0  # ...and answered by VTube Studio, refused or not
        self.state = "idle"
        self.states = AvatarStates()
        self._last_trigger: dict[str, float] = {}
        self._warned: set[str] = set()
        self._unsubscribe: list[Any] = []
        self.connected = asyncio.Event()

    # -- supervision ----------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """One connection to VTube Studio, until ``stop`` is set; raises when it cannot connect or goes away.

        Run under the supervisor (it is an ``Adapter``): it reconnects with backoff capped at ``max_delay`` (VTube
        Studio runs on this machine: knocking every few seconds is cheap, and the avatar moves again within seconds
        of the app coming back), and waits 30 s after a refused authorisation, which only the user can fix.
        """
        self._unsubscribe = [
            self.bus.subscribe(EmotionCue, lambda e: self._on_emotion(e) if self._mine() else None),
            # The same state rules as the built-in web avatar (avatar/states.py), so both can run at once and agree.
            self.bus.subscribe(TurnStarted, self._turn_started),
            self.bus.subscribe(SpeechStarted, lambda e: self._set_state(self.states.speech_started())),
            self.bus.subscribe(TurnEnded, lambda e: self._set_state(self.states.turn_ended(self.clock()))),
        ]
        try:
            await self._session(stop)
            if not stop.is_set():
                self.bus.publish(AdapterStatus(self.name, "reconnecting", "VTube Studio went away"))
                raise AvatarUnavailable("VTube Studio went away")
        except AvatarAuthError as exc:
            self.bus.publish(AdapterStatus(self.name, "error", str(exc)))
            raise RetryLater(str(exc), 30.0) from None
        except (AvatarError, ApiError, OSError) as exc:
            self.bus.publish(AdapterStatus(self.name, "reconnecting", str(exc)))
            raise
        finally:
            self.connected.clear()
            await self.client.close()
            for undo in self._unsubscribe:
                undo()

    async def _session(self, stop: asyncio.Event) -> None:
        await self.client.connect()
        self.client.on("ModelLoadedEvent", self._on_model_loaded)
        await self.client.request("EventSubscriptionRequest", {"eventName": "ModelLoadedEvent", "subscribe": True, "config": {}})
        await self._load_hotkeys()
        self.connected.set()
        self.bus.publish(AdapterStatus(self.name, "connected", f"VTube Studio at {self.client.url}"))
        log.info("avatar: connected to VTube Studio (%d hotkeys)", len(self.hotkeys))
        lips = asyncio.create_task(self._lipsync(), name="avatar-lipsync")
        closed = asyncio.create_task(self.client.closed.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({lips, closed, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (lips, closed, stopping):
                task.cancel()
            await asyncio.gather(lips, closed, stopping, return_exceptions=True)
        if lips.done() and not lips.cancelled() and lips.exception() is not None:
            raise lips.exception()  # type: ignore[misc]
        if stop.is_set() and self.client.connected:
            await self._send_mouth(0.0, wait=True)

    async def _on_model_loaded(self, data: dict[str, Any]) -> None:
        if data.get("modelLoaded", True):
            log.info("avatar: model %s loaded; reading its hotkeys", data.get("modelName", "?"))
            await self._load_hotkeys()

    async def _load_hotkeys(self) -> None:
        data = await self.client.request("HotkeysInCurrentModelRequest", {})
        self.hotkeys = [Hotkey.from_api(h) for h in data.get("availableHotkeys", []) if isinstance(h, dict)]
        self.emotion_map = default_emotion_map(self.hotkeys, KNOWN_EMOTIONS)
        for emotion, ref in self.cfg.emotions.items():
            if ref.endswith(".exp3.json"):
                continue
            hotkey = find_hotkey(self.hotkeys, ref)
            if hotkey is None:
                self._warn_once(f"map:{emotion}", f"avatar: [avatar.emotions] {emotion} = {ref!r}: the model has no such hotkey")
            else:
                self.emotion_map[emotion] = hotkey

    def _turn_started(self, event: TurnStarted) -> None:
        self.on_stage = event.character
        if self._mine():
            self._set_state(self.states.turn_started())

    def _mine(self) -> bool:
        """Whether what is said now is this avatar's to act out (always, outside a group)."""
        return not self.character or not self.on_stage or self.on_stage == self.character

    # -- lip sync -----------------------------------------------------------------

    async def _lipsync(self) -> None:
        period = 1.0 / self.cfg.lipsync_hz
        next_at = self.clock()
        last_sent, last_value = 0.0, -1.0
        while True:
            now = self.clock()
            level = self.level.at(now) if self._mine() else 0.0  # another character's voice: her mouth stays shut
            value = self.mouth.step(level)
            speaking = value > 0 or level > 0
            self._set_state(self.states.level(level, now))
            if speaking or value != last_value or now - last_sent >= KEEPALIVE:
                await self._send_mouth(value)
                last_sent, last_value = now, value
            next_at += period
            delay = next_at - self.clock()
            if delay < -period:  # fell behind (a stalled loop): skip ahead instead of bursting
                next_at = self.clock()
                delay = 0
            await self.sleep(max(0.0, delay))

    async def _send_mouth(self, value: float, *, wait: bool = False) -> None:
        values = [{"id": "MouthOpen", "value": round(value, 4)}]
        if self.cfg.mouth_smile >= 0:
            values.append({"id": "MouthSmile", "value": self.cfg.mouth_smile if value > 0 else 0.0})
        future = self.client.send_nowait("InjectParameterDataRequest", {"faceFound": False, "mode": "set", "parameterValues": values})
        self.injections += 1
        future.add_done_callback(self._check_injection)
        if wait:
            await asyncio.gather(future, return_exceptions=True)

    def _check_injection(self, future: asyncio.Future[dict[str, Any]]) -> None:
        if future.cancelled():
            return
        self.injections_answered += 1
        exc = future.exception()
        if isinstance(exc, ApiError) and exc.error_id == PARAM_CONTROLLED_BY_OTHER_PLUGIN:
            self._warn_once("454", "avatar: another plugin controls MouthOpen, so lip sync cannot move the mouth; "
                            "turn off the other plugin's lip sync (or its MouthOpen control) in VTube Studio")
        elif isinstance(exc, ApiError):
            self._warn_once(f"inject:{exc.error_id}", f"avatar: lip sync: {exc}")

    # -- expressions and states -----------------------------------------------------

    def _on_emotion(self, event: EmotionCue) -> None:
        ref = self.cfg.emotions.get(event.emotion)
        if ref and ref.endswith(".exp3.json"):
            self._spawn(self._expression(ref))
            return
        hotkey = self.emotion_map.get(event.emotion)
        if hotkey is not None:
            self._spawn(self.trigger(hotkey))

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        ref = self.cfg.states.get(state)  # type: ignore[call-overload]
        if ref:
            hotkey = find_hotkey(self.hotkeys, ref)
            if hotkey is None:
                self._warn_once(f"state:{state}", f"avatar: [avatar.states] {state} = {ref!r}: the model has no such hotkey")
            else:
                self._spawn(self.trigger(hotkey))

    def _spawn(self, coro: Any) -> None:
        if not self.connected.is_set():
            coro.close()
            return
        spawn(coro, "vts-trigger")

    async def trigger(self, hotkey: Hotkey) -> bool:
        """Trigger a hotkey unless it is cooling down; VTube Studio's queue/cooldown errors are absorbed."""
        now = time.monotonic()
        if now - self._last_trigger.get(hotkey.hotkey_id, -1e9) < self.cfg.hotkey_cooldown:
            return False
        self._last_trigger[hotkey.hotkey_id] = now
        try:
            await self.client.request("HotkeyTriggerRequest", {"hotkeyID": hotkey.hotkey_id})
        except ApiError as exc:
            if exc.error_id in HOTKEY_BUSY_ERRORS:
                log.debug("avatar: hotkey %s skipped: %s", hotkey.name, exc.message)
                return False
            self._warn_once(f"hotkey:{exc.error_id}", f"avatar: hotkey {hotkey.name!r}: {exc}")
            return False
        except AvatarUnavailable:
            return False
        return True

    async def _expression(self, file: str) -> None:
        try:
            await self.client.request("ExpressionActivationRequest", {"expressionFile": file, "active": True, "fadeTime": 0.25})
        except (ApiError, AvatarUnavailable) as exc:
            self._warn_once(f"expr:{file}", f"avatar: expression {file}: {exc}")

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)
