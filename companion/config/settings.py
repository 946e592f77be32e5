"""``Settings``: every section in one validated model, read from one TOML file with errors that say where and how."""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import platformdirs
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator

from companion.config.avatar import AvatarSection, PetSection
from companion.config.base import ConfigError, _Section, _token_like, is_loopback, secret_value
from companion.config.llm import LLMSection
from companion.config.masking import looks_secret
from companion.config.platforms import DiscordSection, GamesSection, MinecraftSection, StreamSection
from companion.config.sections import (
    CharacterEntry,
    CompanionSection,
    GroupSection,
    MemorySection,
    PersonaSection,
    PluginsSection,
    TextSection,
    ToolsSection,
    WebSection,
)
from companion.config.voice import VoiceSection


class Settings(_Section):
    companion: CompanionSection = Field(default_factory=CompanionSection)
    persona: PersonaSection = Field(default_factory=PersonaSection)
    llm: LLMSection = Field(default_factory=LLMSection)
    text: TextSection = Field(default_factory=TextSection)
    web: WebSection = Field(default_factory=WebSection)
    games: GamesSection = Field(default_factory=GamesSection)
    memory: MemorySection = Field(default_factory=MemorySection)
    voice: VoiceSection = Field(default_factory=VoiceSection)
    avatar: AvatarSection = Field(default_factory=AvatarSection)
    pet: PetSection = Field(default_factory=PetSection)
    tools: ToolsSection = Field(default_factory=ToolsSection)
    plugins: PluginsSection = Field(default_factory=PluginsSection)
    discord: DiscordSection = Field(default_factory=DiscordSection)
    stream: StreamSection = Field(default_factory=StreamSection)
    minecraft: MinecraftSection = Field(default_factory=MinecraftSection)
    characters: list[CharacterEntry] = Field(
        default_factory=list, description="Two or more: a group of characters on one stage (companion.group); one or none: [persona]."
    )
    group: GroupSection = Field(default_factory=GroupSection)

    # Where the file came from (None: embedded defaults); not a config key.
    source: Path | None = Field(None, exclude=True, description="")

    @model_validator(mode="after")
    def _stt_follows_the_persona_language(self) -> "Settings":
        """Whisper listens for the language she speaks, unless [voice.stt] language names one itself."""
        language = self.persona.language
        if language and "language" not in self.voice.stt.model_fields_set:
            self.voice.stt.language = "" if language == "auto" else language.split("_")[0]
            self.voice.stt.model_fields_set.discard("language")  # still the user's to set: not written back as theirs
        return self

    @model_validator(mode="after")
    def _web_token_for_remote(self) -> "Settings":
        if self.web.enabled and not is_loopback(self.web.host) and not self.web_token():
            raise ValueError(
                f"web.host is {self.web.host!r}, which other machines can reach, but no token is set; "
                f"set web.token or the environment variable {self.web.token_env}, or use host = \"127.0.0.1\""
            )
        if self.discord.enabled and not self.discord_token():
            raise ValueError(
                f"discord.enabled is true but there is no bot token: set the environment variable {self.discord.token_env} "
                "(or discord.token); see README, Discord"
            )
        if self.games.enabled and not is_loopback(self.games.host) and not self.games_token():
            raise ValueError(
                f"games.host is {self.games.host!r}, which other machines can reach, but no token is set; "
                f"set games.token or the environment variable {self.games.token_env}, or use host = \"127.0.0.1\""
            )
        return self

    # -- derived values -----------------------------------------------------

    def owner_display_name(self) -> str:
        """How the character calls the person at this PC: [companion] owner_name, else the login name."""
        if self.companion.owner_name.strip():
            return self.companion.owner_name.strip()
        try:
            import getpass

            login = getpass.getuser()
        except (KeyError, OSError, ImportError):
            login = ""
        if not login or login == "root":
            return self.companion.user_name
        return login[:1].upper() + login[1:]

    def data_path(self) -> Path:
        raw = self.companion.data_dir or os.environ.get("COMPANION_DATA_DIR", "")
        path = Path(raw).expanduser() if raw else Path(platformdirs.user_data_dir("companion"))
        return path

    def cache_path(self) -> Path:
        raw = self.llm.transformers.cache_dir
        return Path(raw).expanduser() if raw else Path(platformdirs.user_cache_dir("companion"))

    def openai_api_key(self) -> str | None:
        return secret_value(self.llm.openai.api_key, self.llm.openai.api_key_env)

    def web_token(self) -> str | None:
        return secret_value(self.web.token, self.web.token_env)

    def games_token(self) -> str | None:
        return secret_value(self.games.token, self.games.token_env)

    def discord_token(self) -> str | None:
        return secret_value(self.discord.token, self.discord.token_env)

    def secrets(self) -> list[str]:
        """Every secret value in force (from the file and from the variables it names), for masking.

        Walks the whole configuration rather than a list of known keys, so a
        new section's ``*_key``/``*_token``/``*_secret`` (or its ``..._env``
        variable) and MCP servers' secret environment values are masked too.
        """
        found: list[str] = []

        def walk(model: BaseModel) -> None:
            for name, value in model:
                if isinstance(value, SecretStr):
                    found.append(value.get_secret_value())
                elif isinstance(value, BaseModel):
                    walk(value)
                elif isinstance(value, (list, tuple)):
                    for item in value:
                        if isinstance(item, BaseModel):
                            walk(item)
                elif isinstance(value, dict):
                    for key, item in value.items():
                        if isinstance(item, BaseModel):
                            walk(item)
                        elif isinstance(item, str) and name == "env" and (looks_secret(str(key)) or _token_like(item)):
                            found.append(item)
                elif isinstance(value, str) and value and name.endswith("_env") and looks_secret(name[: -len("_env")]):
                    found.append(os.environ.get(value, ""))

        walk(self)
        return list(dict.fromkeys(s for s in found if s))


def resolve_config_path(cli_path: str | None) -> tuple[Path | None, bool]:
    """Pick the config file: --config, then COMPANION_CONFIG, then ./companion.toml.

    Returns (path, explicit): an explicit path must exist, the implicit one may not.
    """
    if cli_path:
        return Path(cli_path).expanduser(), True
    env = os.environ.get("COMPANION_CONFIG")
    if env:
        return Path(env).expanduser(), True
    local = Path("companion.toml")
    return (local, False) if local.exists() else (None, False)


def load_settings(path: Path | None, explicit: bool = True) -> Settings:
    """Read and validate ``path`` (None: defaults); raise ConfigError with every problem found."""
    data: dict[str, Any] = {}
    if path is not None:
        if not path.exists():
            if explicit:
                raise ConfigError(
                    f"config file {path} does not exist.\n"
                    f"  hint: create one with `companion config example > {path}`, or drop --config to use the defaults"
                )
        else:
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: not valid TOML: {exc}.\n  hint: check quotes and brackets on that line") from None
            except RecursionError:
                raise ConfigError(f"{path}: arrays or tables nested too deeply to be a configuration") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: cannot be read: {exc}") from None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        where = str(path) if path else "defaults"
        raise ConfigError(format_validation_error(exc, where)) from None
    settings.source = path if (path is not None and path.exists()) else None
    return settings


def with_overrides(settings: Settings, assignments: list[str]) -> Settings:
    """``section.field=value`` assignments over ``settings`` (values read as JSON, else as text), validated again:
    how a benchmark tries another setting without a config file of its own."""
    data = settings.model_dump()
    for item in assignments:
        path, sep, raw = item.partition("=")
        node: Any = data
        *parents, leaf = path.split(".")
        try:
            for part in parents:
                node = node[part]
        except (KeyError, TypeError):
            node = None
        if not sep or not isinstance(node, dict) or leaf not in node:
            raise ConfigError(f"{item!r}: not a setting (write section.field=value, e.g. voice.silence_ms=400)")
        try:
            node[leaf] = json.loads(raw)
        except json.JSONDecodeError:
            node[leaf] = raw
    return type(settings).model_validate(data)


def format_validation_error(exc: ValidationError, where: str) -> str:
    lines = [f"{where}: {exc.error_count()} problem(s) in the configuration:"]
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc) or "(top level)"
        kind = err["type"]
        value = err.get("input")
        shown = "<hidden>" if any(looks_secret(p) or p == "env" or p.endswith("_env") for p in loc) else _short(value)
        if kind == "extra_forbidden":
            section = ".".join(loc[:-1])
            known = _known_keys(loc[:-1])
            close = difflib.get_close_matches(loc[-1], known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            lines.append(f"  - {key}: unknown key in [{section or 'top level'}]. hint: {hint}")
        elif kind == "missing":
            lines.append(f"  - {key}: required value is missing. hint: add `{loc[-1]} = ...` (see `companion config example`)")
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            hint = _type_hint(loc)
            # A whole section's check shows no values: the section may hold a secret.
            said = key if isinstance(value, dict) else f"{key} = {shown}"
            lines.append(f"  - {said}: {msg}.{(' hint: ' + hint) if hint else ''}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field_model(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(part)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def _known_keys(loc: list[str]) -> list[str]:
    model = _field_model(loc)
    if model is None:
        return []
    return [name for name in model.model_fields if name != "source"]


def _type_hint(loc: list[str]) -> str:
    model = _field_model(loc[:-1]) if loc else None
    if model is None or loc[-1] not in model.model_fields:
        return ""
    field = model.model_fields[loc[-1]]
    ann = field.annotation
    if get_origin(ann) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(ann))
    if get_origin(ann) is list:
        inner = get_args(ann)[0]
        if get_origin(inner) is Literal:
            return "a list of " + ", ".join(repr(a) for a in get_args(inner))
    return field.description or ""
