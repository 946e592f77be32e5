"""[avatar]: VTube Studio and the web avatar page."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from companion.config.base import _Section


class WebAvatarSection(_Section):
    mode: Literal["svg", "png", "vrm"] = Field(
        "svg", description='The avatar in the web page and the /avatar OBS source: "svg" (the built-in character), '
        '"png" (your PNGtuber images, see png_folder) or "vrm" (your .vrm model, see vrm_file).',
    )
    show_on_page: bool = Field(True, description="Show the avatar beside the chat on the main page.")
    png_folder: str = Field(
        "", description="PNGtuber images: idle.png, talking.png, optional blink.png, and per emotion happy-idle.png, "
        "happy-talking.png... (png, webp, gif or jpg).",
    )
    vrm_file: str = Field("", description="Your VRM model (0.x or 1.0), for mode = \"vrm\".")
    mouth_gain: float = Field(8.0, gt=0, le=100, description="Loudness to mouth opening for the web avatar.")


class PetSection(_Section):
    enabled: bool = Field(False, description="Open her desktop window (`companion pet`) with `companion run`.")
    scale: float = Field(1.0, ge=0.4, le=2.5, description="Her size the first time (scroll over her to resize; remembered).")
    hotkey: str = Field(
        "<ctrl>+<alt>+p", description='Hide or show her from anywhere (pynput syntax, e.g. "<ctrl>+<shift>+h"; "" for none). '
        "Not on Wayland without XWayland.",
    )


class AvatarSection(_Section):
    enabled: bool = Field(False, description="Drive a VTube Studio model: lip sync, expressions, states (`companion run`).")
    url: str = Field("ws://127.0.0.1:8001", description="VTube Studio API address (Settings > 'Start API').")
    discover: bool = Field(False, description="Find VTube Studio's port through its UDP broadcast (port 47779) first.")
    plugin_name: str = Field("companion", min_length=3, max_length=32, description="Name shown in VTube Studio's approval pop-up.")
    developer: str = Field("companion project", min_length=3, max_length=32, description="Developer shown in the pop-up.")
    lipsync_hz: int = Field(30, ge=10, le=60, description="Mouth updates per second (one batched request each).")
    mouth_gain: float = Field(6.0, gt=0, le=100, description="Loudness to mouth opening: raise it if the mouth barely moves.")
    mouth_smile: float = Field(-1.0, ge=-1.0, le=1.0, description="Also set MouthSmile while speaking (0..1); -1: leave it alone.")
    emotions: dict[str, str] = Field(
        default_factory=dict,
        description='Emotion tag -> hotkey name/ID or expression file (*.exp3.json), e.g. {happy = "Smile"}. '
        "Unmapped emotions use hotkeys whose names match (smile, cry, angry...).",
    )
    states: dict[Literal["idle", "listening", "thinking", "speaking"], str] = Field(
        default_factory=dict, description='State -> hotkey name/ID, e.g. {thinking = "Think"}.'
    )
    hotkey_cooldown: float = Field(2.0, ge=0, description="Seconds before the same hotkey is triggered again.")
    web: WebAvatarSection = Field(default_factory=lambda: WebAvatarSection())
