"""`companion model list|pull|use|rm|info`: find, download and switch to a chat model that fits this machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from companion.cli.common import EXIT_FAILURE, EXIT_USAGE, Command, report_text, show_help
from companion.config import Settings, deep_merge, read_config_data, resolve_config_path, save_config


def register(sub: Any) -> None:
    model = sub.add_parser("model", help="chat models: list what fits here, pull one from the hub, use it")
    actions = model.add_subparsers(dest="model_command", metavar="ACTION")
    ls = actions.add_parser("list", help="the catalog (what fits this machine, what is recommended) and models on disk")
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    pull = actions.add_parser("pull", help="download a model: NAME, ORG/REPO, ORG/REPO:FILE.gguf or ORG/REPO:QUANT")
    pull.add_argument("ref")
    pull.add_argument("--no-progress", action="store_true", help="no progress bar")
    use = actions.add_parser("use", help="make a model the LLM: NAME, ORG/REPO:FILE.gguf, ollama:NAME:TAG or a .gguf path")
    use.add_argument("ref")
    use.add_argument("--no-check", action="store_true", help="do not load it and ask for one reply first")
    rm = actions.add_parser("rm", help="delete a pulled model from the hub cache")
    rm.add_argument("ref")
    info = actions.add_parser("info", help="what a model is, and how fast it runs here (a few seconds' self-test)")
    info.add_argument("ref")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--no-speed", action="store_true", help="skip the self-test")
    model.set_defaults(handler=Command(_model, data_dir=False))


def _model(settings: Settings, args: argparse.Namespace) -> int:
    action = getattr(args, "model_command", None)
    if action is None:
        return show_help("model")
    return _run({"list": _list, "pull": _pull, "use": _use, "rm": _rm, "info": _info}[action], settings, args)


def _run(handler: Any, settings: Settings, args: argparse.Namespace) -> int:
    """One model or voice action: its errors are one line (exit 1), Ctrl+C says how to resume."""
    from companion.models.hub import ModelError

    try:
        return int(handler(settings, args))
    except ModelError as exc:
        return report_text(str(exc), getattr(args, "json", False))
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130


def _list(settings: Settings, args: argparse.Namespace) -> int:
    from companion.models.local import inventory

    found = inventory()
    here, rows, local = found["machine"], found["catalog"], found["local"]
    best = next((r for r in rows if r["recommended"]), None)
    if args.json:
        print(json.dumps({"machine": here, "catalog": rows, "local": local}, ensure_ascii=False))
        return 0
    ram = f"{here['ram_bytes'] / 2**30:.0f} GiB RAM" if here["ram_bytes"] else "RAM unknown"
    gpu = f", {here['gpu']} ({(here['vram_free_bytes'] or 0) / 2**30:.1f} GiB free)" if here["gpu"] else ", no GPU seen"
    print(f"this machine: {here['cores']} cores, {ram}{gpu}")
    print(f"{'':2}{'name':<18}{'size':>9}  {'needs':<22}{'here':<30}")
    for row in rows:
        mark = "*" if row["recommended"] else " "
        needs = f"{row['ram_gb']:g} GiB RAM / {row['vram_gb']:g} VRAM"
        here_text = ("downloaded, " if row["downloaded"] else "") + (f"runs on {row['runs_on']}" if row["fits"] else row["why_not"])
        extras = " vision" if row["vision"] else ""
        print(f"{mark} {row['name']:<18}{row['size_bytes'] / 2**30:>7.1f} G  {needs:<22}{here_text}{extras}")
    if best is not None:
        print(f"\n* recommended here: {best['name']}. Get it: companion model pull {best['name']} && companion model use {best['name']}")
    if local:
        print("\non disk:")
        for m in local:
            print(f"  {m['name']}  ({m['size_bytes'] / 2**30:.1f} GiB)")
    return 0


def _pull(settings: Settings, args: argparse.Namespace) -> int:
    from companion.models.catalog import load_catalog
    from companion.models.hub import parse_ref, pull

    ref = parse_ref(args.ref, load_catalog())
    paths = pull(ref, progress=not args.no_progress)
    for path in paths:
        print(f"ok: {path} ({path.stat().st_size / 2**30:.2f} GiB, checked)")
    name = ref.name or f"{ref.repo}:{paths[0].name}"
    print(f"use it: companion model use {name}")
    return 0


def _resolve(ref: str) -> tuple[Path, Path | None]:
    from companion.models.local import resolve_local

    return resolve_local(ref)


def _use(settings: Settings, args: argparse.Namespace) -> int:

    path, projector = _resolve(args.ref)
    if not args.no_check:
        reply = asyncio.run(_one_turn(path, projector, settings))
        print(f"checked: it loads and answers ({reply!r})")
    config, before = _write_config(args, {"llm": {"provider": "llamacpp", "llamacpp": {"model": str(path), "mmproj": str(projector or "")}}})
    old = before.get("llm", {})
    running = _tell_running(settings, path)
    if running:
        print(running)
    print(f"{config}: llm.provider {old.get('provider', 'llamacpp')!r} -> 'llamacpp'; "
          f"llm.llamacpp.model {old.get('llamacpp', {}).get('model', '')!r} -> {str(path)!r}"
          + (f"; mmproj -> {str(projector)!r}" if projector else "")
          + (f" (the old file is {config.name}.bak)" if config.with_name(config.name + ".bak").exists() else ""))
    return 0


def _write_config(args: argparse.Namespace, changes: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Merge ``changes`` into the config file (the old one kept as .bak); (its path, what it held before)."""
    from companion.models.hub import ModelError

    config, _explicit = resolve_config_path(getattr(args, "config", None))
    config = config or Path("companion.toml")
    before = read_config_data(config)
    try:
        save_config(config, deep_merge(before, changes))
    except Exception as exc:  # noqa: BLE001 - ConfigError and OSError: the file is unchanged
        raise ModelError(f"could not write {config}: {exc}") from None
    return config, before


def _tell_running(settings: Settings, path: Path) -> str:
    """A companion running on this data folder switches to the model now (its settings API); what happened, or ""."""
    import urllib.error
    import urllib.request

    try:
        info = json.loads((settings.data_path() / "run.json").read_text(encoding="utf-8"))
        port = int(info["web_port"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""  # none running (or without its web server): the next start reads the config
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/settings", data=json.dumps({"llm": {"gguf": str(path)}}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    token = settings.web_token()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as resp:  # noqa: S310 - a loopback URL we built
            applied = json.loads(resp.read()).get("applied", [])
    except urllib.error.HTTPError as exc:
        return f"the running companion (pid {info.get('pid')}) kept its model: {exc.read().decode(errors='replace')[:300]}"
    except (urllib.error.URLError, OSError, ValueError):
        return ""  # it has stopped
    return f"the running companion (pid {info.get('pid')}) switched now ({', '.join(applied)}); replies in flight finish on the old model"


async def _one_turn(path: Path, projector: Path | None, settings: Settings) -> str:
    from companion.llm.base import GenerationOptions, LLMError
    from companion.llm.llamacpp import LlamaCppLLM
    from companion.models.hub import ModelError

    llm = LlamaCppLLM(model=str(path), mmproj=str(projector or ""), n_ctx=2048, parallel=1, threads=settings.llm.llamacpp.threads)
    try:
        text = ""
        async for chunk in llm.stream([{"role": "user", "content": "Say hello in five words."}], GenerationOptions(max_tokens=16)):
            text += chunk.text
    except LLMError as exc:
        raise ModelError(f"{path} did not answer: {exc}; the config was not changed") from None
    finally:
        await llm.close()
    if not text.strip():
        raise ModelError(f"{path} loaded but wrote nothing; the config was not changed")
    return text.strip()


def _rm(settings: Settings, args: argparse.Namespace) -> int:
    path, projector = _resolve(args.ref)
    if args.ref.startswith("ollama:") or "snapshots" not in path.parts:
        print(f"error: {args.ref} is not a pulled model (remove Ollama's models with `ollama rm`, your own files yourself)", file=sys.stderr)
        return EXIT_USAGE
    freed = 0
    for link in (path, projector):
        if link is None:
            continue
        blob = link.resolve()
        freed += blob.stat().st_size if blob.exists() else 0
        link.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
    print(f"removed {args.ref} ({freed / 2**30:.2f} GiB freed)")
    return 0


def _info(settings: Settings, args: argparse.Namespace) -> int:
    from companion.llm.gguf_meta import GGUFError, read_metadata
    from companion.models.hub import ModelError

    path, projector = _resolve(args.ref)
    try:
        meta = read_metadata(path)
    except GGUFError as exc:
        raise ModelError(f"{path}: {exc}") from None
    arch = meta.get("general.architecture", "?")
    template = str(meta.get("tokenizer.chat_template") or "")
    out: dict[str, Any] = {
        "path": str(path), "size_bytes": path.stat().st_size, "architecture": arch, "name": meta.get("general.name", ""),
        "parameters": meta.get("general.size_label", ""), "file_type": meta.get("general.file_type"),
        "context": meta.get(f"{arch}.context_length"), "chat_template": bool(template), "tools": "tools" in template,
        "vision": projector is not None, "mmproj": str(projector or ""),
    }
    if not args.no_speed:
        out.update(asyncio.run(_speed(path, settings)))
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    for key, value in out.items():
        print(f"{key:>18}: {value}")
    return 0


async def _speed(path: Path, settings: Settings) -> dict[str, float]:
    """Prompt and generation speed on this machine: a 300-token prompt and 32 tokens out."""
    from companion.llm.base import GenerationOptions
    from companion.llm.llamacpp import LlamaCppLLM

    llm = LlamaCppLLM(model=str(path), n_ctx=2048, parallel=1, threads=settings.llm.llamacpp.threads)
    try:
        prompt = [{"role": "user", "content": "Here is a list of things to remember. " + " ".join(f"item {i}," for i in range(100)) + " Say ok."}]
        async for _ in llm.stream(prompt, GenerationOptions(max_tokens=32, temperature=0)):
            pass
        timings = llm.last_timings
    finally:
        await llm.close()
    return {
        "prompt_tokens_per_s": round(float(timings.get("prompt_per_second", 0.0)), 1),
        "generation_tokens_per_s": round(float(timings.get("predicted_per_second", 0.0)), 1),
    }


__all__ = ["register", "EXIT_FAILURE"]


# -- voices: `companion voice list|pull|use` (registered in cli/voice.py; the downloads are the models package's) --


def voices_command(settings: Settings, args: argparse.Namespace) -> int:
    return _run({"list": _voice_list, "pull": _voice_pull, "use": _voice_use}[args.voice_command], settings, args)


def _voice_list(settings: Settings, args: argparse.Namespace) -> int:
    from companion.models.local import cached_file
    from companion.models.voices import PIPER_REPO, list_voices, voice_files

    language = args.language or (settings.persona.language if settings.persona.language != "auto" else "")
    voices = list_voices(language)
    rows: list[dict[str, Any]] = [
        {"name": v.name, "language": v.language, "language_name": v.language_name, "quality": v.quality,
         "speakers": v.speakers, "size_bytes": v.size_bytes, "downloaded": str(cached_file(PIPER_REPO, voice_files(v.name)[0]) or "")}
        for v in voices
    ]
    if args.json:
        print(json.dumps({"voices": rows}, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no Piper voice for {language!r}; `companion voice list all` shows every language")
        return 0
    for row in rows:
        mark = "downloaded" if row["downloaded"] else ""
        print(f"  {row['name']:<34} {row['language_name']:<34} {row['size_bytes'] / 2**20:>5.0f} MiB  {mark}")
    print("\nget one: companion voice pull NAME && companion voice use NAME")
    return 0


def _voice_pull(settings: Settings, args: argparse.Namespace) -> int:
    from companion.models.voices import pull_voice, pull_whisper

    if args.name.startswith("whisper:"):
        folder = pull_whisper(args.name.split(":", 1)[1], progress=not args.no_progress)
        print(f"ok: {folder} (a faster-whisper model, checked)")
        print(f"use it: companion voice use {args.name}")
        return 0
    path = pull_voice(args.name, progress=not args.no_progress)
    print(f"ok: {path} (with its .onnx.json, checked)")
    print(f"use it: companion voice use {args.name}")
    return 0


def _voice_use(settings: Settings, args: argparse.Namespace) -> int:
    from companion.models.hub import ModelError
    from companion.models.local import cached_file
    from companion.models.voices import PIPER_REPO, voice_files

    if args.name.startswith("whisper:"):
        return _whisper_use(args)
    path = Path(args.name).expanduser()
    if not (args.name.endswith(".onnx") and path.is_file()):
        model, _config = voice_files(args.name)
        found = cached_file(PIPER_REPO, model)
        if found is None:
            raise ModelError(f"{args.name} is not downloaded: companion voice pull {args.name}")
        path = found
    if not args.no_check:
        asyncio.run(_say_something(path))
        print("checked: it speaks")
    config, before = _write_config(args, {"voice": {"tts": {"provider": "piper", "voice": str(path)}}})
    old = before.get("voice", {}).get("tts", {})
    print(f"{config}: voice.tts.provider {old.get('provider', 'piper')!r} -> 'piper'; voice.tts.voice {old.get('voice', '')!r} -> {str(path)!r}")
    return 0


async def _say_something(path: Path) -> None:
    from companion.models.hub import ModelError
    from companion.voice.tts.piper import PiperTTS

    tts = PiperTTS(str(path))
    try:
        await tts.start()
        audio = b""
        async for chunk in tts.synthesize("Hello there."):
            audio += chunk.tobytes() if hasattr(chunk, "tobytes") else bytes(chunk)
    except Exception as exc:  # noqa: BLE001 - any failure to speak: the config stays as it was
        raise ModelError(f"{path} does not speak: {exc}; the config was not changed") from None
    finally:
        await tts.close()
    if not audio:
        raise ModelError(f"{path} loaded but made no sound; the config was not changed")


def _whisper_use(args: argparse.Namespace) -> int:
    from companion.models.hub import ModelError
    from companion.models.local import cached_file
    from companion.models.voices import WHISPER_REPOS

    size = args.name.split(":", 1)[1]
    repo = WHISPER_REPOS.get(size)
    found = cached_file(repo, "model.bin") if repo else None
    if found is None:
        raise ModelError(f"{args.name} is not downloaded: companion voice pull {args.name}")
    config, before = _write_config(args, {"voice": {"stt": {"provider": "faster-whisper", "model": str(found.parent)}}})
    old = before.get("voice", {}).get("stt", {}).get("model", "")
    print(f"{config}: voice.stt.model {old!r} -> {str(found.parent)!r} (whisper {size})")
    return 0
