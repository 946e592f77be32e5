"""The bot's skills as tools the LLM calls, and a keyword planner for models too small to call tools.

Every skill reports success or a reason it failed (the model reads it and
answers from it); a newer instruction interrupts the running one. Owner-only
skills go through the tool registry's permissions; breaking blocks near spawn
is refused to everyone but the owner by the bot itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from companion.minecraft.process import BotProcess
from companion.tools.registry import Tool, ToolContext, ToolResult

__all__ = ["Step", "plan", "skill_tools", "SKILL_TIMEOUTS"]

SKILL_TIMEOUTS = {"look": 5.0, "follow": 5.0, "goto": 60.0, "collect": 90.0, "place": 20.0, "craft": 10.0, "equip": 5.0,
                  "attack": 30.0, "eat": 10.0, "say": 5.0, "stop": 5.0}

_NAME = {"type": "string", "minLength": 1, "maxLength": 40}
_XYZ = {"x": {"type": "number"}, "y": {"type": "number"}, "z": {"type": "number"}}
SKILLS: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (description, parameters, permission)
    "look": ("Look around in Minecraft: position, health, food, day or night, nearby players, mobs, blocks and the inventory.",
             {"type": "object", "properties": {}}, "anyone"),
    "follow": ("Follow a player around until told otherwise.",
               {"type": "object", "properties": {"player": _NAME}, "required": ["player"]}, "anyone"),
    "goto": ("Walk to a player, or to x y z coordinates.",
             {"type": "object", "properties": {"player": _NAME, **_XYZ}}, "anyone"),
    "collect": ("Mine or collect a number of blocks of one type (e.g. oak_log, dirt, stone).",
                {"type": "object", "properties": {"block": _NAME, "count": {"type": "integer", "minimum": 1, "maximum": 32}}, "required": ["block"]}, "anyone"),
    "place": ("Place a block from the inventory next to you (or at x y z).",
              {"type": "object", "properties": {"block": _NAME, **_XYZ}, "required": ["block"]}, "anyone"),
    "craft": ("Craft an item from the inventory (a crafting table must be nearby for 3x3 recipes).",
              {"type": "object", "properties": {"item": _NAME, "count": {"type": "integer", "minimum": 1, "maximum": 64}}, "required": ["item"]}, "anyone"),
    "equip": ("Hold an item from the inventory.", {"type": "object", "properties": {"item": _NAME}, "required": ["item"]}, "anyone"),
    "attack": ("Fight the nearest hostile mob.", {"type": "object", "properties": {}}, "anyone"),
    "eat": ("Eat something from the inventory.", {"type": "object", "properties": {}}, "anyone"),
    "say": ("Say something in the Minecraft game chat.",
            {"type": "object", "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 250}}, "required": ["text"]}, "anyone"),
    "stop": ("Stop what you are doing in Minecraft.", {"type": "object", "properties": {}}, "anyone"),
}


def skill_tools(bot: BotProcess, owner_only: frozenset[str] = frozenset()) -> list[Tool]:
    """One tool per skill, named minecraft_SKILL; ``owner_only`` skills need the owner."""
    tools = []
    for name, (description, parameters, permission) in SKILLS.items():
        async def handler(args: dict[str, Any], ctx: ToolContext, name: str = name) -> ToolResult:
            result = await bot.skill(name, {**args, "owner": ctx.level == "owner"}, SKILL_TIMEOUTS[name])
            return ToolResult(result.text, is_error=not result.ok)

        tools.append(Tool(
            f"minecraft_{name}", description, handler, parameters,
            permission="owner" if name in owner_only else permission, timeout=SKILL_TIMEOUTS[name] + 5, source="minecraft",
        ))
    return tools


@dataclass(frozen=True)
class Step:
    skill: str
    args: dict[str, Any] = field(default_factory=dict)
    says: str = ""  # what the companion tells chat it is doing


_COUNT = re.compile(r"\b(\d{1,2})\b")
_WORDS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "some": 4, "few": 3, "lots": 8, "many": 8}


def _count(text: str, default: int) -> int:
    match = _COUNT.search(text)
    if match:
        return max(1, min(32, int(match.group(1))))
    for word in re.findall(r"[a-z]+", text):
        if word in _WORDS:
            return _WORDS[word]
    return default


def plan(goal: str, speaker: str) -> list[Step]:
    """Skill steps for a plain request, for models that cannot call tools (the embedded one). [] when not understood."""
    text = goal.lower()
    n = _count(text, 4)
    if re.search(r"\bstop\b|\bwait\b|\bstay\b", text):
        return [Step("stop", says="Okay, stopping!")]
    if re.search(r"follow me|come with me", text):
        return [Step("follow", {"player": speaker}, f"Following you, {speaker}!")]
    if re.search(r"come (here|to me)|over here", text):
        return [Step("goto", {"player": speaker}, "On my way!")]
    if re.search(r"\b(house|shelter|hut|wall)\b", text):
        return [Step("collect", {"block": "dirt", "count": 6}, "Let's build! First some dirt.")] + [
            Step("place", {"block": "dirt"}, "" if i else "Placing the walls!") for i in range(4)
        ]
    if re.search(r"\b(wood|logs?|trees?)\b", text):
        return [Step("collect", {"block": "oak_log", "count": n}, f"Getting {n} oak logs!")]
    if re.search(r"\bdirt\b", text):
        return [Step("collect", {"block": "dirt", "count": n}, f"Digging {n} dirt!")]
    if re.search(r"\bstone\b|\bcobble", text):
        return [Step("collect", {"block": "stone", "count": n}, f"Mining {n} stone!")]
    if re.search(r"\b(eat|hungry|food)\b", text):
        return [Step("eat", says="Snack time.")]
    if re.search(r"\b(fight|attack|kill)\b", text) and "player" not in text:
        return [Step("attack", says="I'll get it!")]
    craft = re.search(r"\bcraft (?:an? |some )?([a-z_ ]+)", text)
    if craft:
        item = craft.group(1).strip().replace(" ", "_")
        return [Step("craft", {"item": item, "count": _count(text, 1)}, f"Crafting {item}!")]
    if re.search(r"what (do )?you see|look around|where are you", text):
        return [Step("look")]
    return []
