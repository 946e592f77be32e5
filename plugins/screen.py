"""screen: "what do you think of this?" — captures the screen and shows it to a vision-capable model (owner only)."""

from __future__ import annotations

import asyncio
import base64


def grab(monitor: int = 1) -> bytes:
    """A PNG of the screen (monitor 1 = the primary one) through mss."""
    try:
        import mss
        import mss.tools
    except ImportError:
        raise RuntimeError("the screen plugin needs mss: pip install mss") from None
    with (mss.MSS() if hasattr(mss, "MSS") else mss.mss()) as shot:
        monitors = shot.monitors
        if monitor >= len(monitors):
            raise RuntimeError(f"there is no monitor {monitor} (found {len(monitors) - 1})")
        image = shot.grab(monitors[monitor])
        png = mss.tools.to_png(image.rgb, image.size)  # bytes when no output file is given
        if png is None:
            raise RuntimeError("mss returned no image")
        return png


async def setup(app) -> None:
    from companion.tools.registry import ToolResult

    @app.tool(
        "look_at_screen",
        "Take a screenshot of the person's screen to see what they are looking at (a game, a picture, a page).",
        {"type": "object", "properties": {"monitor": {"type": "integer", "minimum": 1}}},
        permission="owner",  # a screen shows private things: only the owner may make the model look
        timeout=10.0,
    )
    async def look_at_screen(args, ctx):
        try:
            png = await asyncio.get_running_loop().run_in_executor(None, grab, int(args.get("monitor", 1)))
        except Exception as exc:  # noqa: BLE001 - no display, no permission: tell the model
            return ToolResult(f"error: cannot capture the screen ({exc})", is_error=True)
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        return ToolResult("Here is the screenshot; describe what you see and react to it.", images=[url])
