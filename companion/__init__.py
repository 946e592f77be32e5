"""companion: a self-hosted AI companion and virtual streamer.

The package is layered (see ARCHITECTURE.md). Modules that sat at its top before 0.1 moved into the layers'
packages; their old names still import, with a DeprecationWarning, until 0.2, so plugins written against them
keep working (``from companion.events import Announcement`` is now ``companion.runtime.events``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

__version__ = "0.1.0"

# old module -> where it lives now
MOVED = {
    "companion.events": "companion.runtime.events", "companion.bus": "companion.runtime.bus",
    "companion.tasks": "companion.runtime.tasks", "companion.supervisor": "companion.runtime.supervisor",
    "companion.backoff": "companion.runtime.supervisor", "companion.dbthread": "companion.runtime.dbthread",
    "companion.safejson": "companion.runtime.safejson", "companion.jsonschemas": "companion.runtime.jsonschemas",
    "companion.resources": "companion.runtime.resources", "companion.masking": "companion.config.masking",
    "companion.datadir": "companion.config.datadir", "companion.persona": "companion.character.persona",
    "companion.cards": "companion.character.cards", "companion.lorebook": "companion.character.lorebook",
    "companion.macros": "companion.character.macros", "companion.engine": "companion.core.engine",
    "companion.reply": "companion.core.reply", "companion.turn": "companion.core.turn",
    "companion.speech": "companion.core.speech", "companion.history": "companion.core.history",
    "companion.prompt": "companion.core.prompt", "companion.moderation": "companion.core.moderation",
    "companion.audio_level": "companion.core.audio_level", "companion.hygiene": "companion.text.hygiene",
    "companion.voice.level": "companion.core.audio_level", "companion.stream.moderation": "companion.core.moderation",
}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as the module at its new place (the same object), with a warning."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}: import it from there (the old name goes in 0.2)", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its new name


if not any(isinstance(f, _Moved) for f in sys.meta_path):
    sys.meta_path.append(_Moved())
