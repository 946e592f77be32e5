"""clock: the time and date, and timers that ring out loud."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from companion.runtime.events import Announcement


async def setup(app) -> None:
    @app.tool(
        "current_time",
        "The current local date and time (optionally in an IANA time zone such as Europe/Paris).",
        {"type": "object", "properties": {"timezone": {"type": "string"}}},
    )
    async def current_time(args, ctx):
        zone = args.get("timezone")
        try:
            now = datetime.now(ZoneInfo(zone)) if zone else datetime.now().astimezone()
        except (ZoneInfoNotFoundError, ValueError):
            return f"unknown time zone {zone!r}"
        return now.strftime("%A %d %B %Y, %H:%M (%Z)")

    @app.tool(
        "set_timer",
        "Start a timer; when it ends the companion says so.",
        {
            "type": "object",
            "properties": {"seconds": {"type": "integer", "minimum": 1, "maximum": 86400}, "label": {"type": "string"}},
            "required": ["seconds"],
        },
    )
    async def set_timer(args, ctx):
        seconds, label = args["seconds"], args.get("label") or "timer"

        async def ring() -> None:
            await app.sleep(seconds)
            app.bus.publish(Announcement(ctx.conversation_id, f"Your {label} is done!", ctx.speaker_id))

        app.background(ring, f"timer-{label}")
        return f"timer '{label}' set for {seconds} seconds"
