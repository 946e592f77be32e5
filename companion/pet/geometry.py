"""Where her window stands and how big it is: remembered between runs, kept on a screen that exists.

Pure: the window code asks these functions and moves the window; nothing here touches a toolkit, so the rules a
user notices (she comes back where she was left, she never ends up on a monitor that was unplugged, scrolling
resizes her around her feet) are tested without a screen.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

# The window is her and a speech bubble above her: portrait, about the size of a desktop icon column.
DEFAULT_WIDTH = 320
DEFAULT_HEIGHT = 480
MIN_SCALE = 0.4
MAX_SCALE = 2.5
SCROLL_STEP = 0.1  # one wheel notch: 10% bigger or smaller
MARGIN = 24  # from the screen edge where she first appears
VISIBLE_PART = 0.5  # less of her than this on any screen (a monitor unplugged): she comes back to the main one


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    def overlap(self, other: "Rect") -> int:
        w = min(self.x + self.width, other.x + other.width) - max(self.x, other.x)
        h = min(self.y + self.height, other.y + other.height) - max(self.y, other.y)
        return max(0, w) * max(0, h)


@dataclass(frozen=True)
class Geometry:
    """The window: top-left corner and the scale of her default size."""

    x: int
    y: int
    scale: float = 1.0

    @property
    def width(self) -> int:
        return round(DEFAULT_WIDTH * self.scale)

    @property
    def height(self) -> int:
        return round(DEFAULT_HEIGHT * self.scale)

    def rect(self) -> Rect:
        return Rect(self.x, self.y, self.width, self.height)


def first_place(screen: Rect, scale: float = 1.0) -> Geometry:
    """Bottom right of the main screen, where a pet usually sits, clear of the edge."""
    g = Geometry(0, 0, _clamp_scale(scale))
    return Geometry(screen.x + screen.width - g.width - MARGIN, screen.y + screen.height - g.height - MARGIN, g.scale)


def keep_on_screen(geometry: Geometry, screens: list[Rect]) -> Geometry:
    """The same place when enough of her shows on some screen; else back to the main screen (the first)."""
    if not screens:
        return geometry
    rect = geometry.rect()
    area = rect.width * rect.height
    best = max(screens, key=rect.overlap)
    if best.overlap(rect) >= VISIBLE_PART * area:
        return geometry
    return first_place(screens[0], geometry.scale)


def scrolled(geometry: Geometry, notches: float) -> Geometry:
    """Bigger (wheel up, positive) or smaller, standing on the same spot: her feet and centre do not move."""
    scale = _clamp_scale(round(geometry.scale * (1 + SCROLL_STEP) ** notches, 3))
    new = Geometry(0, 0, scale)
    centre = geometry.x + geometry.width / 2
    feet = geometry.y + geometry.height
    return Geometry(round(centre - new.width / 2), round(feet - new.height), scale)


def _clamp_scale(scale: float) -> float:
    return min(MAX_SCALE, max(MIN_SCALE, scale))


def load(path: Path) -> Geometry | None:
    """The remembered place; None when there is none or the file is not ours (a broken file is not an error)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Geometry(int(data["x"]), int(data["y"]), _clamp_scale(float(data.get("scale", 1.0))))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(path: Path, geometry: Geometry) -> None:
    """Written whole and swapped in, so a crash mid-write leaves the old place, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(geometry)), encoding="utf-8")
    os.replace(tmp, path)
