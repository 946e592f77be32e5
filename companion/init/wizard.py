"""`companion init`: the guided set-up, step by step, each step skippable and re-runnable alone.

It reads the existing companion.toml (if any), changes only what the steps
decide, keeps a copy of the old file (``companion.toml.bak``), writes a
commented file and validates it with the same loader `companion run` uses.
With ``yes`` nothing is asked: detected defaults (or the given flags) are taken.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion.config import ConfigError, Settings, read_config_data, save_config
from companion.init.choose import ModelInfo, Server, is_chat_model, pick_model, size_text

__all__ = ["STEPS", "InitOptions", "Wizard"]

STEPS = ("language", "llm", "voice", "avatar", "character")
EMBEDDED = "embedded"


@dataclass
class InitOptions:
    config_path: Path
    steps: tuple[str, ...] = STEPS
    yes: bool = False
    llm: str | None = None  # "embedded" | "ollama" | "lmstudio" | a server URL
    model: str | None = None
    name: str | None = None
    card: str | None = None
    voice: str | None = None  # "on" | "off"
    avatar: str | None = None  # "on" | "off" | a ws:// URL
    language: str | None = None  # ISO code or "auto"


@dataclass
class Wizard:
    options: InitOptions
    ask: Callable[[str], str] = input
    say: Callable[[str], None] = print
    data: dict[str, Any] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)  # one line per step, for the summary

    # -- the whole run ---------------------------------------------------------------

    async def run(self) -> int:
        path = self.options.config_path
        if path.exists():
            try:
                self.data = read_config_data(path)
            except ConfigError as exc:
                self.say(f"error: {exc}, then run `companion init` again")
                return 2
            self.say(f"Updating {path} (the current file is kept as {path.name}.bak).")
        else:
            self.say(f"Writing {path}.")
        for step in self.options.steps:
            self.say("")
            await getattr(self, f"_step_{step}")()
        return self._write()

    def _write(self) -> int:
        path = self.options.config_path
        try:
            save_config(path, self.data)
        except ConfigError as exc:
            self.say(f"error: the new configuration does not validate, {path} is unchanged:\n{exc}")
            return 1
        self.say("")
        for line in self.done:
            self.say(f"  {line}")
        here = path.resolve() == (Path.cwd() / "companion.toml").resolve()
        self.say(f"\nSaved {path}. Start with: companion run" + ("" if here else f" --config {path}"))
        return 0

    # -- asking ----------------------------------------------------------------------

    def _choose(self, question: str, options: list[str], default: int) -> int | None:
        """A numbered choice; Enter takes the default, "s" skips. None: skipped."""
        for i, option in enumerate(options, 1):
            self.say(f"  [{i}] {option}")
        if self.options.yes:
            return default
        while True:
            answer = self.ask(f"{question} [{default + 1}, s to skip]: ").strip().lower()
            if not answer:
                return default
            if answer == "s":
                return None
            if answer.isdigit() and 1 <= int(answer) <= len(options):
                return int(answer) - 1
            self.say(f"  type a number from 1 to {len(options)}, Enter for {default + 1}, or s")

    def _text(self, question: str, default: str) -> str:
        if self.options.yes:
            return default
        answer = self.ask(f"{question} [{default}]: " if default else f"{question}: ").strip()
        return answer or default

    def _confirm(self, question: str, default: bool = True) -> bool:
        if self.options.yes:
            return default
        answer = self.ask(f"{question} [{'Y/n' if default else 'y/N'}]: ").strip().lower()
        return default if not answer else answer.startswith("y")

    def _section(self, *path: str) -> dict[str, Any]:
        node = self.data
        for key in path:
            node = node.setdefault(key, {})
        return node

    # -- steps -------------------------------------------------------------------------

    async def _step_language(self) -> None:
        """The language she speaks: set [persona] language and offer a Piper voice for it."""
        import re

        self.say("== Language ==")
        current = self.data.get("persona", {}).get("language", "")
        wanted = self.options.language if self.options.language is not None else self._text(
            "Which language should she speak? (ISO code: en, zh, de, pt_BR...; auto: the one you speak to her)", current or "en"
        )
        wanted = wanted.strip()
        if not re.fullmatch(r"auto|[a-z]{2,3}(_[A-Z]{2})?", wanted):
            self.say(f"{wanted!r} is not a language code (like en, zh, de or pt_BR); the language is unchanged")
            self.done.append("language: unchanged")
            return
        wanted = "" if wanted == "en" else wanted  # English is the default: no rule in the prompt
        if wanted == current:
            self.done.append(f"language: {wanted or 'en'} (unchanged)")
            return
        self._section("persona")["language"] = wanted
        self.done.append(f"language: {wanted or 'en'}")
        if wanted and wanted != "auto":
            await asyncio.to_thread(self._offer_voice, wanted)

    def _offer_voice(self, language: str) -> None:
        from companion.models.hub import ModelError
        from companion.models.voices import list_voices, pull_voice

        try:
            voices = list_voices(language)
        except (ModelError, ImportError) as exc:
            self.say(f"Could not list voices now ({exc}); later: companion voice list {language}")
            return
        if not voices:
            self.say(f"Piper has no voice for {language!r}; an OpenAI-compatible speech server ([voice.tts] provider = \"openai\") may.")
            return
        voices = sorted(voices, key=lambda v: (v.quality != "medium", v.name))[:5]
        labels = [f"{v.name} ({v.language_name}, {v.quality}, {v.size_bytes / 2**20:.0f} MiB)" for v in voices]
        choice = self._choose("Which voice should she speak with?", labels, 0)
        if choice is None:
            return
        try:
            path = pull_voice(voices[choice].name)
        except ModelError as exc:
            self.say(f"The voice did not download: {exc}")
            return
        self._section("voice", "tts").update({"provider": "piper", "voice": str(path)})
        self.done.append(f"voice: {voices[choice].name}")

    async def _step_llm(self) -> None:
        from companion.init.detect import detect_servers, total_memory_bytes

        self.say("== The model (LLM) ==")
        wanted = self.options.llm
        url = wanted if wanted and "://" in wanted else None
        servers = [s for s in await detect_servers(url) if any(is_chat_model(m.name) for m in s.models)]
        for server in servers:
            self.say(f"Found {server.label} with {len(server.models)} model(s).")
        if not servers:
            self.say("No Ollama, LM Studio or other server answered" + (f" at {url}" if url else "") + ".")
        offer = _recommended_download(self.data.get("persona", {}).get("language", ""))
        options = [server.label for server in servers]
        if offer is not None:
            entry, text = offer
            options.append(text)
        options.append("the embedded model (SmolLM2-135M: tiny, for trying things out)")
        embedded = len(options) - 1
        # No server: offer the model that fits this machine (a person choosing; never a silent download with --yes).
        default = 0 if servers else (len(servers) if offer is not None and not self.options.yes else embedded)
        if wanted == EMBEDDED:
            default = embedded
        elif wanted in ("ollama", "lmstudio"):
            match = [i for i, s in enumerate(servers) if s.kind == wanted]
            if not match:
                self.say(f"{wanted} is not running here; the model setting is unchanged")
                self.done.append("model: unchanged")
                return
            default = match[0]
        elif url and servers:
            default = next((i for i, s in enumerate(servers) if s.kind == "openai"), 0)
        choice = self._choose("Which one should she think with?", options, default)
        if choice is None:
            self.done.append("model: unchanged")
            return
        llm = self._section("llm")
        if offer is not None and choice == len(servers):
            path = self._download(offer[0])
            if path is None:
                return
            llm["provider"] = "llamacpp"
            self._section("llm", "llamacpp")["model"] = str(path)
            self.done.append(f"model: {offer[0].name} ({path})")
            return
        if choice == embedded:
            llm["provider"] = "llamacpp"
            self.done.append("model: the embedded SmolLM2-135M (run `companion init llm` when you have Ollama or LM Studio)")
            return
        server = servers[choice]
        model = self._pick_model(server, total_memory_bytes())
        if model is None:
            return
        llm["provider"] = "openai"
        self._section("llm", "openai").update({"base_url": server.base_url, "model": model.name})
        self.done.append(f"model: {model.name} on {server.label}")

    def _download(self, entry: Any) -> Any:
        """Pull a catalog model with its progress bar; None (and a line saying how to retry) when it fails."""
        from companion.models.hub import ModelError, parse_ref, pull

        self.say(f"Downloading {entry.name} from the Hugging Face hub ({entry.repo})...")
        try:
            return pull(parse_ref(entry.name, [entry]))[0]
        except ModelError as exc:
            self.say(f"The download did not finish: {exc}")
            self.done.append(f"model: unchanged (retry with `companion model pull {entry.name}`)")
            return None

    def _pick_model(self, server: Server, memory: int | None) -> ModelInfo | None:
        chat = [m for m in server.models if is_chat_model(m.name)]
        if self.options.model:
            named = next((m for m in chat if m.name == self.options.model), None)
            if named is None:
                self.say(f"{server.label} has no model {self.options.model!r}; it has: {', '.join(m.name for m in chat)}")
                return None
            return named
        suggested = pick_model(chat, memory)
        default = chat.index(suggested) if suggested in chat else 0
        labels = [m.name + (f" ({size_text(m)})" if size_text(m) else "") for m in chat]
        if memory:
            self.say(f"This machine has {memory / 2**30:.0f} GiB of memory; suggested: the largest chat model that fits.")
        choice = self._choose("Which model?", labels, default)
        return None if choice is None else chat[choice]

    async def _step_voice(self) -> None:
        from companion.init.devices import echo_check, list_devices, play_test, record_level

        self.say("== Voice (microphone and speaker on this PC) ==")
        voice = self._section("voice")
        if self.options.voice == "off":
            voice["enabled"] = False
            self.done.append("voice: off")
            return
        devices = list_devices()
        if devices.problem or not devices.inputs or not devices.outputs:
            why = devices.problem or ("no microphone" if not devices.inputs else "no speaker")
            self.say(f"No usable audio device: {why}.\nVoice stays off; you can still talk through the browser page's microphone.")
            voice["enabled"] = False
            self.done.append("voice: off (no audio device)")
            return
        mic = self._choose("Microphone?", ["the system default", *devices.inputs], 0)
        if mic is None:
            self.done.append("voice: unchanged")
            return
        speaker = self._choose("Speaker?", ["the system default", *devices.outputs], 0) or 0
        voice["input_device"] = devices.inputs[mic - 1] if mic else ""
        voice["output_device"] = devices.outputs[speaker - 1] if speaker else ""
        self.say("Say something for two seconds...")

        def meter(level: float) -> None:
            sys.stdout.write("\r  [" + "#" * int(level * 30) + " " * (30 - int(level * 30)) + "]")
            sys.stdout.flush()

        try:
            peak = await asyncio.to_thread(record_level, voice["input_device"] or None, 2.0, meter)
        except Exception as exc:  # noqa: BLE001 - any device error: report it and leave voice off
            self.say(f"\nThe microphone cannot be opened: {exc}. Voice stays off.")
            voice["enabled"] = False
            self.done.append("voice: off (microphone failed)")
            return
        self.say("")
        heard_you = peak > 0.02
        if not heard_you:
            self.say("The microphone heard nothing (check it is not muted).")
        settings = self._settings()
        try:
            await play_test(settings, "Hello! Can you hear me?")
            played = self._confirm("Did you hear her say 'Hello! Can you hear me?'")
        except Exception as exc:  # noqa: BLE001
            self.say(f"The test sentence could not be played: {exc}.")
            played = False
        voice["enabled"] = bool(heard_you and played)
        if voice["enabled"]:
            self.say("Checking whether she hears herself through the speakers (stay quiet a moment)...")
            try:
                room = await asyncio.to_thread(echo_check, settings)
            except Exception as exc:  # noqa: BLE001 - a check, never a failed set-up
                self.say(f"The echo check could not run ({exc}); if she interrupts herself, use headphones.")
            else:
                figure = "" if room["erle_db"] is None else f" ({room['erle_db']} dB)"
                self.say(f"{room['verdict'][0].upper()}{room['verdict'][1:]}{figure}.")
                if not room["works"] and room["erle_db"] is not None:
                    voice["barge_in"] = "min_speech"  # a murmur of her own voice must not cut her off
        self.done.append("voice: " + ("on" if voice["enabled"] else "off (the check did not pass; run `companion init voice` again)"))

    async def _step_avatar(self) -> None:
        from companion.init.devices import find_vtube_studio

        self.say("== Avatar (VTube Studio) ==")
        avatar = self._section("avatar")
        if self.options.avatar == "off":
            avatar["enabled"] = False
            self.done.append("avatar: off")
            return
        url = self.options.avatar if self.options.avatar and "://" in self.options.avatar else None
        self.say("Looking for VTube Studio (accept the plugin in its pop-up if it asks)...")
        found = await find_vtube_studio(self._settings(), url)
        if found.problem:
            self.say(f"{found.problem.rstrip('.')}.\nWhen it runs, set it up with `companion init avatar`.")
            self.done.append("avatar: not found (unchanged)")
            return
        self.say(f"Connected: model {found.model or '(none loaded)'} with {len(found.hotkeys)} hotkey(s).")
        for emotion, hotkey in sorted(found.mapping.items()):
            self.say(f"  [{emotion}] -> {hotkey}")
        if not found.mapping:
            self.say("  no hotkey names an emotion; map them by hand in [avatar.emotions]")
        if not self._confirm("Use VTube Studio with this mapping?"):
            self.done.append("avatar: unchanged")
            return
        avatar.update({"enabled": True, "url": found.url})
        if found.mapping:
            avatar["emotions"] = {**avatar.get("emotions", {}), **found.mapping}
        self.done.append(f"avatar: VTube Studio at {found.url}, {len(found.mapping)} emotion(s) mapped")

    async def _step_character(self) -> None:
        from companion.character.cards import CardError
        from companion.character.persona import import_character

        self.say("== You and her ==")
        settings = self._settings()
        name = self.options.name or self._text("Your name (she calls you by it)", settings.owner_display_name())
        if name != settings.companion.user_name or self.options.name:
            self._section("companion")["owner_name"] = name
        card = self.options.card if self.options.card is not None else self._text(
            "A character card to use (a .png/.json/.charx file; Enter keeps the default character)", "")
        line = f"you: {name}"
        if card:
            try:
                character, target = import_character(Path(card).expanduser(), settings.data_path() / "personas")
            except (CardError, OSError) as exc:
                self.say(f"That card cannot be used: {exc}")
            else:
                self._section("persona")["card"] = character.name
                line += f"; character: {character.name} (imported to {target})"
        self.done.append(line)

    def _settings(self) -> Settings:
        """The settings as chosen so far (for the checks that need them)."""
        try:
            return Settings.model_validate(self.data)
        except Exception:  # noqa: BLE001 - a half-edited file: checks use the defaults
            return Settings()


def _recommended_download(language: str = "") -> tuple[Any, str] | None:
    """The catalog model recommended for this machine (among those that speak ``language``) and how it is offered."""
    try:
        from huggingface_hub import constants

        from companion.models.catalog import Machine, fits, load_catalog, recommended
        from companion.models.local import cached_file
    except ImportError:  # the hub library is not installed: no download to offer
        return None
    machine = Machine.detect(Path(constants.HF_HUB_CACHE))
    catalog = load_catalog()
    code = language.split("_")[0]
    speaks = [e for e in catalog if code in e.languages] if code and code not in ("en", "auto") else catalog
    entry = recommended(speaks, machine) or recommended(catalog, machine)
    if entry is None:
        return None
    where = fits(entry, machine)[1]
    have = cached_file(entry.repo, entry.file) is not None
    minutes = max(1, round(entry.download_bytes / (50e6 / 8) / 60))  # a 50 Mbit/s line
    detail = "already downloaded" if have else f"{entry.download_bytes / 2**30:.1f} GiB, about {minutes} min at 50 Mbit/s"
    return entry, f"download {entry.name}, recommended for this machine ({detail}; needs {entry.ram_gb:g} GiB RAM, runs on {where})"
