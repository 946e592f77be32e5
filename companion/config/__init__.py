"""Configuration: one TOML file -> validated settings, one module per group of sections.

Validation happens once at start-up so that a typo is reported with the key path, the bad value and a hint,
instead of surfacing hours later as a crash. Secrets are ``SecretStr`` (never printed) and can come from
environment variables so the file itself can be shared safely.

Layout: ``base`` (the section base class, ConfigError), ``llm``, ``voice``, ``avatar``, ``platforms`` (games,
Minecraft, Discord, stream), ``sections`` (the small ones), ``settings`` (the whole model and loading), ``toml``
(writing), ``datadir`` (the data folder), ``masking`` (secrets kept out of output). A new section is a model in
the module of its topic plus one field on ``Settings``.
The bottom layer: it imports nothing else from companion.
"""

from companion.config.avatar import AvatarSection, WebAvatarSection
from companion.config.base import ConfigError, is_loopback, secret_value
from companion.config.llm import LLM_PROVIDERS, LlamaCppSection, LLMSection, OpenAISection, TransformersSection
from companion.config.platforms import DiscordSection, GamesSection, MinecraftSection, StreamSection, TwitchSection, YouTubeSection
from companion.config.sections import (
    CompanionSection,
    MCPServerSection,
    MemorySection,
    PersonaSection,
    PluginsSection,
    TextSection,
    ToolsSection,
    WebSection,
)
from companion.config.settings import Settings, format_validation_error, load_settings, resolve_config_path, with_overrides
from companion.config.toml import CONFIG_HEADER, deep_merge, example_toml, read_config_data, render_config, save_config
from companion.config.voice import STTSection, TTSSection, VoiceSection

__all__ = [
    "AvatarSection", "CONFIG_HEADER", "CompanionSection", "ConfigError", "DiscordSection", "GamesSection", "LLMSection",
    "LLM_PROVIDERS", "LlamaCppSection", "MCPServerSection", "MemorySection", "MinecraftSection", "OpenAISection",
    "PersonaSection", "PluginsSection", "STTSection", "Settings", "StreamSection", "TTSSection", "TextSection",
    "ToolsSection", "TransformersSection", "TwitchSection", "VoiceSection", "WebAvatarSection", "WebSection",
    "YouTubeSection", "deep_merge", "example_toml", "format_validation_error", "is_loopback", "load_settings",
    "read_config_data", "render_config", "resolve_config_path", "save_config", "secret_value", "with_overrides",
]
