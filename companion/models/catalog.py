"""The model catalog (``catalog.toml``, data not code) and what this machine can run.

``companion model list`` shows each entry with whether it fits here (RAM, free
disk, a GPU's VRAM when one is visible) and which one is recommended for this
hardware class; the choice of entries and why each is there is in the data file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CatalogEntry", "Machine", "load_catalog", "hardware_class", "recommended", "fits", "CATALOG"]

CATALOG = Path(__file__).with_name("catalog.toml")
GiB = 1024**3


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    name: str
    repo: str
    file: str
    quant: str
    size_bytes: int
    context: int
    licence: str
    tools: bool
    vision: bool
    ram_gb: float
    vram_gb: float
    languages: tuple[str, ...] = ()
    recommended_for: str = ""
    why: str = ""
    mmproj: str = ""
    mmproj_bytes: int = 0

    @property
    def download_bytes(self) -> int:
        return self.size_bytes + self.mmproj_bytes


@dataclass(frozen=True, slots=True)
class Machine:
    """What matters for choosing a model: memory, disk where models go, and a GPU if one is visible."""

    ram_bytes: int | None
    free_disk_bytes: int | None
    gpu: str = ""
    vram_free_bytes: int | None = None
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @classmethod
    def detect(cls, models_dir: Path) -> "Machine":
        gpu, vram = _nvidia()
        return cls(ram_bytes=_ram(), free_disk_bytes=_free_disk(models_dir), gpu=gpu, vram_free_bytes=vram)


def load_catalog(path: Path = CATALOG) -> list[CatalogEntry]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries = []
    for raw in data.get("model", []):
        raw = dict(raw)
        raw["languages"] = tuple(raw.get("languages", ()))
        entries.append(CatalogEntry(**raw))
    return entries


def hardware_class(machine: Machine) -> str:
    """cpu-small, cpu, gpu-4, gpu-8 or gpu-12 (the classes the catalog recommends for)."""
    if machine.gpu and machine.vram_free_bytes:
        vram = machine.vram_free_bytes / GiB
        if vram >= 12:
            return "gpu-12"
        if vram >= 8:
            return "gpu-8"
        if vram >= 4:
            return "gpu-4"
    if machine.ram_bytes is not None and machine.ram_bytes < 8 * GiB:
        return "cpu-small"
    return "cpu"


def fits(entry: CatalogEntry, machine: Machine) -> tuple[bool, str]:
    """(whether it runs here, why not / where: "GPU", "CPU")."""
    if machine.free_disk_bytes is not None and machine.free_disk_bytes < entry.download_bytes:
        return False, f"needs {entry.download_bytes / GiB:.1f} GiB of disk, {machine.free_disk_bytes / GiB:.1f} GiB free"
    if machine.gpu and machine.vram_free_bytes and machine.vram_free_bytes >= entry.vram_gb * GiB:
        return True, "GPU"
    if machine.ram_bytes is not None and machine.ram_bytes < entry.ram_gb * GiB:
        return False, f"needs {entry.ram_gb:g} GiB of RAM, this machine has {machine.ram_bytes / GiB:.1f}"
    return True, "CPU"


def recommended(entries: list[CatalogEntry], machine: Machine) -> CatalogEntry | None:
    """The entry marked for this machine's class, or the largest that fits when that one does not."""
    cls = hardware_class(machine)
    marked = next((e for e in entries if e.recommended_for == cls), None)
    if marked is not None and fits(marked, machine)[0]:
        return marked
    fitting = [e for e in entries if fits(e, machine)[0] and (e.recommended_for.startswith("cpu") or machine.gpu)]
    return max(fitting, key=lambda e: e.size_bytes, default=None)


def _ram() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _free_disk(path: Path) -> int | None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def _nvidia() -> tuple[str, int | None]:
    """The first NVIDIA GPU and its free memory, through nvidia-smi when it is installed."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "", None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip().splitlines()
        name, free_mib = (part.strip() for part in out[0].rsplit(",", 1))
        return name, int(float(free_mib)) * 1024 * 1024
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return "", None
