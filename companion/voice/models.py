"""One set of voice models per process: the local microphone, the browser voice and Discord share them.

Each model is built and started on first use (Discord speaking needs only
TTS; listening needs STT too) and closed once, at shutdown, by whoever
created the set.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from companion.config import Settings

__all__ = ["VoiceModels"]


class VoiceModels:
    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.stt: Any = None
        self.tts: Any = None
        self.builds = 0  # models built (tests check that a process builds each once)
        self._built: list[Any] = []  # only models built here are closed here (a host may hand in shared ones)
        self._lock = asyncio.Lock()

    async def get_stt(self) -> Any:
        return await self._model("stt")

    async def get_tts(self) -> Any:
        return await self._model("tts")

    async def _model(self, kind: str) -> Any:
        async with self._lock:
            if getattr(self, kind) is None:
                from companion.voice.build import build_stt, build_tts

                model = (build_stt if kind == "stt" else build_tts)(self.settings)
                await model.start()
                setattr(self, kind, model)
                self.builds += 1
                self._built.append(model)
        return getattr(self, kind)

    async def get(self) -> tuple[Any, Any]:
        return await self.get_stt(), await self.get_tts()

    async def close(self) -> None:
        built, self._built = self._built, []
        self.stt = self.tts = None
        for model in built:
            await model.close()
