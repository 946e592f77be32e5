"""The smaller sections: [companion], [persona], [text], [web], [memory], [tools] (MCP servers), [plugins]."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from companion.config.base import _Section


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
    language: str = Field(
        "",
        description='The language she speaks (ISO code: "zh", "de", "pt_BR"...): she answers in it and whisper listens for it '
        '(unless [voice.stt] language says otherwise). "auto": she answers in the language she is spoken to and whisper '
        "detects it. Empty: English. Get a voice for it with `companion voice list LANG`.",
    )


    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str) -> str:
        if not re.fullmatch(r"|auto|[a-z]{2,3}(_[A-Z]{2})?", value):
            raise ValueError(f'{value!r} is not a language code: use an ISO code like "zh", "de" or "pt_BR", or "auto"')
        return value


class CharacterEntry(_Section):
    """One character of a group ([[characters]]): two or more make her a show with a co-host."""

    card: str = Field("", description="As [persona] card: a card path or an imported character's name; empty: the default character.")
    host: bool = Field(False, description="The host answers when nobody else would and plays games; the first character when none says so.")
    voice: str = Field("", description="Piper voice .onnx for this character (empty: [voice.tts] voice).")
    talkativeness: float = Field(
        -1.0, ge=-1, le=1,
        description="How readily she joins in unnamed, 0-1 (SillyTavern's talkativeness); -1: the card's, else 0.5.",
    )
    max_tokens: int = Field(0, ge=0, description="Reply budget; 0: [llm] max_tokens for the host, [group] cohost_max_tokens for the others.")
    discord_token_env: str = Field(
        "",
        description="Environment variable with this co-host's own Discord bot token: her lines are posted by her bot. "
        "Empty: the host's bot posts them under her name.",
    )
    vts_url: str = Field(
        "",
        description="VTube Studio API of this character's model (a second VTube Studio on its own port, e.g. "
        "ws://127.0.0.1:8002); it moves for her lines only. Empty: the host's is [avatar] url; a co-host has none.",
    )


class GroupSection(_Section):
    banter: int = Field(2, ge=0, le=10, description="Lines the characters may say to each other before a person speaks again (0: none).")
    cohost_max_tokens: int = Field(60, ge=8, description="Reply budget of characters other than the host (shorter: the host leads).")


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
    say_as_owner: bool = Field(
        False,
        description="POST /api/say speaks as the owner (speaker \"local\": their name, memories and owner-only tools) "
        "instead of its own \"web:control\" speaker. Only for a control page you alone reach (a stream deck, a script).",
    )
    max_connections: int = Field(256, ge=4, description="Connections served at once; more get 503 (pages, API, websockets).")
    header_timeout: float = Field(10.0, gt=0, description="Seconds a connection may take to send its request before it is closed.")


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
    quote_answers: Literal["auto", "on", "off"] = Field(
        "auto", description="A direct question about the person (\"what do I do for work?\") that their own remembered "
        "words answer starts the reply with those words (\"You told me you work as...\"). auto: for small local models, "
        "which otherwise often ignore what they are reminded of.",
    )


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
