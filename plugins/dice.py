"""dice: roll dice written like 2d6+1 (fair, from the OS's random source)."""

from __future__ import annotations

import re
import secrets

_DICE = re.compile(r"^\s*(\d{0,3})d(\d{1,4})\s*([+-]\s*\d{1,4})?\s*$", re.IGNORECASE)


def roll(expression: str) -> tuple[list[int], int, int]:
    """(rolls, modifier, total) for an expression such as "3d6+2"; ValueError when it is not one."""
    match = _DICE.match(expression)
    if not match:
        raise ValueError(f"{expression!r} is not dice notation (e.g. d20, 2d6+1)")
    count, sides = int(match.group(1) or 1), int(match.group(2))
    if not 1 <= count <= 100 or sides < 2:
        raise ValueError("roll 1 to 100 dice with at least 2 sides")
    modifier = int(match.group(3).replace(" ", "")) if match.group(3) else 0
    rolls = [secrets.randbelow(sides) + 1 for _ in range(count)]
    return rolls, modifier, sum(rolls) + modifier


async def setup(app) -> None:
    @app.tool(
        "roll_dice",
        "Roll dice in tabletop notation, e.g. d20, 2d6+1. Use it whenever dice, luck or a random number is asked for.",
        {"type": "object", "properties": {"dice": {"type": "string"}}, "required": ["dice"]},
    )
    async def roll_dice(args, ctx):
        try:
            rolls, modifier, total = roll(args["dice"])
        except ValueError as exc:
            return f"error: {exc}"
        mod = f" {'+' if modifier >= 0 else '-'} {abs(modifier)}" if modifier else ""
        return f"{args['dice']}: rolled {rolls}{mod} = {total}"
