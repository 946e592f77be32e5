"""The companion in Minecraft: joins with the bot, talks in game chat, plays through skills, comments on events.

In-game chat goes through the same conversation path as every platform (each
player is a speaker with memory; moderation applies). A model that can call
tools plays through the ``minecraft_*`` tools; the embedded model, which
cannot, gets the keyword planner instead, so "get some wood" works on the
defaults too. Skills run in the background: she keeps talking while she digs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any

from companion.llm.base import Priority
from companion.minecraft.process import BOT_DIR, BotProcess, SkillResult
from companion.minecraft.skills import SKILL_TIMEOUTS, Step, plan, skill_tools
from companion.runtime.events import AdapterStatus
from companion.runtime.supervisor import Adapter
from companion.runtime.tasks import spawn

if TYPE_CHECKING:
    from pathlib import Path

    from companion.config import Settings
    from companion.core.engine import Companion

__all__ = ["MinecraftAdapter", "ALTERNATIVES"]

log = logging.getLogger(__name__)

# When a block is not around, what else does the job (re-planning without a model).
ALTERNATIVES = {
    "oak_log": ["birch_log", "spruce_log", "jungle_log", "acacia_log", "dark_oak_log"],
    "stone": ["cobblestone", "andesite", "diorite", "granite"],
    "dirt": ["grass_block", "coarse_dirt"],
}
EVENT_TEXT = {
    "damage": lambda e: f"I just got hurt (health {round(e.get('health') or 0)}/20)!",
    "death": lambda e: "I died in Minecraft!",
    "night": lambda e: "Night is falling in Minecraft; monsters will come out.",
    "player_joined": lambda e: f"{e.get('user')} joined the Minecraft world.",
    "item_found": lambda e: f"I picked up {e.get('count', 1)} {str(e.get('item', 'item')).replace('_', ' ')}.",
}


class MinecraftAdapter(Adapter):
    name = "minecraft"
    first_delay = 0.5  # the bot is a child process on this machine: start it again at once
    max_delay = 10.0

    def __init__(self, companion: "Companion", settings: "Settings", *, bot_dir: "Path" = BOT_DIR, rng: random.Random | None = None) -> None:
        self.companion = companion
        self.settings = settings
        cfg = settings.minecraft
        self.cfg = cfg
        env = {
            "MC_HOST": cfg.host, "MC_PORT": str(cfg.port), "MC_USERNAME": cfg.username, "MC_VERSION": cfg.version,
            "MC_RADIUS": str(cfg.radius), "MC_PROTECT": str(cfg.protect_spawn),
        }
        self.bot = BotProcess(env, self._on_event, node=cfg.node, bot_dir=bot_dir)
        self.rng = rng or random.Random()
        self.plan_task: asyncio.Task[list[SkillResult]] | None = None
        self.history: list[SkillResult] = []  # every step run by plans (for the demo and tests)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._commenting = False
        if cfg.owner and f"minecraft:{cfg.owner}" not in settings.tools.owners:
            settings.tools.owners.append(f"minecraft:{cfg.owner}")  # their chat may use owner-only skills

    # -- lifetime -----------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        from companion.tools.registry import ToolRegistry

        if self.companion.tools is None:
            self.companion.tools = ToolRegistry()
        undo = [self.companion.tools.register(tool) for tool in skill_tools(self.bot, owner_only=frozenset())]
        idle = asyncio.create_task(self._autonomy(stop)) if self.cfg.autonomy == "always" else None
        try:
            await self.bot.run(stop)
        finally:
            for remove in undo:
                remove()
            if idle is not None:
                idle.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, *([idle] if idle else []), return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        """A background task (logged if it fails, through tasks.spawn) that run() cancels when it stops."""
        task = spawn(coro, "minecraft")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- events from the bot --------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        bus = self.companion.bus
        if kind == "joined":
            log.info("minecraft: joined %s:%s as %s", self.cfg.host, self.cfg.port, event.get("username"))
            bus.publish(AdapterStatus("minecraft", "connected", f"{event.get('username')} on {self.cfg.host}:{self.cfg.port}"))
        elif kind == "disconnected":
            bus.publish(AdapterStatus("minecraft", "reconnecting", str(event.get("reason", ""))[:200]))
        elif kind == "chat":
            self._spawn(self.on_chat(str(event.get("user", "")), str(event.get("text", ""))))
        elif kind in EVENT_TEXT:
            self._maybe_comment(EVENT_TEXT[kind](event))

    # -- chat ----------------------------------------------------------------------------

    async def on_chat(self, user: str, text: str) -> None:
        """A player wrote in game chat: answer like any platform; carry out a request with the planner if the model cannot."""
        if not user or not text.strip() or user == self.cfg.username:
            return
        steps = plan(text, user) if self.cfg.autonomy != "off" else []
        if steps and not getattr(self.companion.llm, "supports_tools", True):
            self.start_plan(steps)
        handle = self.companion.reply(
            text, conversation_id="minecraft:chat", speaker_id=f"minecraft:{user}", speaker_name=user, platform="minecraft",
        )
        result = await handle.written()  # into game chat at once, while the voices still speak it
        if result.reply and self.cfg.chat_replies:
            await self.bot.skill("say", {"text": result.reply[:250]}, SKILL_TIMEOUTS["say"])
        await handle.wait()

    # -- plans ----------------------------------------------------------------------------

    def start_plan(self, steps: list[Step]) -> asyncio.Task[list[SkillResult]]:
        """Run ``steps`` in the background; a newer plan replaces a running one (the bot interrupts its skill)."""
        if self.plan_task is not None and not self.plan_task.done():
            self.plan_task.cancel()
        self.plan_task = self._spawn(self.execute(steps))
        return self.plan_task

    async def execute(self, steps: list[Step]) -> list[SkillResult]:
        """Each step in turn, telling chat what she does; a failed step is retried with an alternative, or reported."""
        done: list[SkillResult] = []
        for step in steps:
            if step.says and self.cfg.chat_replies:
                await self.bot.skill("say", {"text": step.says}, SKILL_TIMEOUTS["say"])
            result = await self.bot.skill(step.skill, {**step.args, "owner": True}, SKILL_TIMEOUTS[step.skill])
            if not result.ok and step.skill == "collect":
                for other in ALTERNATIVES.get(str(step.args.get("block")), []):
                    retry = await self.bot.skill("collect", {**step.args, "block": other, "owner": True}, SKILL_TIMEOUTS["collect"])
                    if retry.ok:
                        result = retry
                        break
            done.append(result)
            self.history.append(result)
            if not result.ok:
                if self.cfg.chat_replies:
                    await self.bot.skill("say", {"text": f"I couldn't: {result.reason}"[:250]}, SKILL_TIMEOUTS["say"])
                break
        return done

    async def _autonomy(self, stop: asyncio.Event, every: float = 20.0) -> None:
        """autonomy = "always": when nothing else runs, keep busy (fight, eat, stay with the owner)."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every)
                return
            except TimeoutError:
                pass
            if self.plan_task is not None and not self.plan_task.done() or not self.bot.joined.is_set():
                continue
            seen = await self.bot.skill("look", {}, SKILL_TIMEOUTS["look"])
            if not seen.ok:
                continue
            text = seen.text
            if "(hostile)" in text:
                self.start_plan([Step("attack", says="Monster! I'll handle it.")])
            elif (seen.result.get("food") or 20) < 14:
                self.start_plan([Step("eat")])
            elif self.cfg.owner and self.cfg.owner in text:
                self.start_plan([Step("follow", {"player": self.cfg.owner})])

    # -- commentary ------------------------------------------------------------------------

    def _maybe_comment(self, text: str) -> None:
        if self._commenting or self.rng.random() >= self.cfg.chattiness:
            return
        self._commenting = True

        async def comment() -> None:
            try:
                result = await self.companion.respond(
                    f"(in Minecraft) {text}", conversation_id="minecraft:world", speaker_id="minecraft:world",
                    speaker_name="Minecraft", platform="game", priority=Priority.COMMENTARY,
                )
                if result.reply and self.cfg.chat_replies and not result.interrupted:
                    await self.bot.skill("say", {"text": result.reply[:250]}, SKILL_TIMEOUTS["say"])
            finally:
                self._commenting = False

        self._spawn(comment())
