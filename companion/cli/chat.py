"""`companion chat`: talk to the character in the terminal, or one turn (`-m`, `--json`) for scripts."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import mimetypes
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from companion.cli.common import EXIT_FAILURE, EXIT_USAGE, Command, report
from companion.config import ConfigError, Settings

if TYPE_CHECKING:
    from companion.group.cast import Cast, Line


def register(sub: Any) -> None:
    chat = sub.add_parser("chat", help="talk to the character in the terminal")
    chat.add_argument("--message", "-m", help="send one message, print the reply and exit")
    chat.add_argument("--json", action="store_true", help="with --message: print one JSON object")
    chat.add_argument("--speaker", default="local", help="who is speaking (an id; memory tells people apart by it)")
    chat.add_argument("--name", help="the speaker's display name (default: the speaker id)")
    chat.add_argument("--conversation", default="cli", help="conversation id (history is kept per conversation)")
    chat.add_argument("--image", action="append", default=[], help="attach an image file or URL (repeatable)")
    chat.add_argument(
        "--platform", default="cli", choices=["cli", "twitch", "youtube"],
        help="twitch/youtube: send the message the way stream chat arrives (moderation, prioritiser, chat prompt)",
    )
    chat.set_defaults(handler=Command(_chat))


def _image_url(ref: str) -> str:
    if ref.startswith(("http://", "https://", "data:")):
        return ref
    path = Path(ref).expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--image {ref}: cannot be read ({exc.strerror})") from None
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    if not mime.startswith("image/"):
        raise ConfigError(f"--image {ref}: not an image ({mime})")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from companion.app import default_model_notice, setup_logging

    setup_logging(settings, console_level="ERROR" if args.json else "WARNING")
    images = [_image_url(ref) for ref in args.image]
    if args.json and args.message is None:
        print("error: --json needs --message", file=sys.stderr)
        return EXIT_USAGE
    if not args.json and (notice := default_model_notice(settings)):
        print(f"note: {notice}", file=sys.stderr)
    try:
        return asyncio.run(_chat_async(settings, args, images))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001
        return report(exc, args.json)


async def _chat_async(settings: Settings, args: argparse.Namespace, images: list[str]) -> int:
    from companion.app import build_companion
    from companion.group.build import is_group

    if is_group(settings):
        return await _group_chat(settings, args, images)

    companion = build_companion(settings)
    speaker_name = args.name or (args.speaker if args.speaker != "local" else None)
    await companion.start()
    from companion.app import Extensions

    extensions = Extensions(companion, settings)
    await extensions.start()
    try:
        if args.message is not None:
            return await _one_turn(companion, args, speaker_name, images)
        return await _interactive(companion, args, speaker_name, images)
    finally:
        await extensions.close()
        # a one-off chat ends right after the reply: give memory extraction time to finish, or nothing is remembered
        if companion.memory is not None and companion.memory.pending() and not args.json:
            print("(saving memories…)", file=sys.stderr)
        await companion.close(memory_grace=120.0)


async def _one_turn(companion: Any, args: argparse.Namespace, speaker_name: str | None, images: list[str]) -> int:
    def stream(text: str) -> None:
        if not args.json:
            sys.stdout.write(text)
            sys.stdout.flush()

    if args.platform in ("twitch", "youtube"):
        return await _stream_chat_turn(companion, args, speaker_name)
    result = await companion.respond(
        args.message,
        conversation_id=args.conversation,
        speaker_id=args.speaker,
        speaker_name=speaker_name,
        platform="cli",
        images=images,
        on_token=stream,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "reply": result.reply,
                    "emotions": result.emotions,
                    "sentences": [{"text": s.text, "speech": s.speech, "emotions": list(s.emotions)} for s in result.sentences],
                    "timings": result.timings_ms,
                    "turn_id": result.turn_id,
                    "interrupted": result.interrupted,
                    "error": result.error,
                    "character": companion.character.name,
                    "speaker": args.speaker,
                    "conversation": args.conversation,
                },
                ensure_ascii=False,
            )
        )
    else:
        print()
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
    return EXIT_FAILURE if result.error else 0


async def _stream_chat_turn(companion: Any, args: argparse.Namespace, speaker_name: str | None) -> int:
    """One chat message through exactly the path a Twitch/YouTube message takes."""
    from companion.stream.chat import StreamChat

    chat = StreamChat(companion, companion.settings)
    candidate = _stream_candidate(chat, args, speaker_name)
    if candidate is None:
        return 0
    result = await chat.answer(candidate)
    if args.json:
        print(json.dumps({
            "answered": True,
            "reply": result.reply,
            "emotions": result.emotions,
            "sentences": [{"text": s.text, "speech": s.speech} for s in result.sentences],
            "timings": result.timings_ms,
            "error": result.error,
            "platform": args.platform,
            "speaker": args.speaker,
            "conversation": f"stream:{args.platform}",
        }, ensure_ascii=False))
    else:
        print(result.reply)
    return EXIT_FAILURE if result.error else 0


def _stream_candidate(chat: Any, args: argparse.Namespace, speaker_name: str | None) -> Any:
    """The message through the prioritiser as stream chat takes it; None (said why) when it would not be answered."""
    from companion.stream.message import ChatMessage

    outcome = chat.ingest(ChatMessage(args.platform, args.speaker, speaker_name or args.speaker, args.message))
    candidate = chat.prioritiser.next() if outcome == "queued" else None
    if candidate is None:
        out = {"answered": False, "reason": outcome, "platform": args.platform, "speaker": args.speaker}
        print(json.dumps(out) if args.json else f"not answered: {outcome}")
    return candidate


async def _ask(you: str) -> str | None:
    """The next line typed, or None when the person is done (an empty line or Ctrl+D)."""
    try:
        text = await asyncio.to_thread(input, f"{you}: ")
    except EOFError:
        print()
        return None
    return text if text.strip() else None


async def _interactive(companion: Any, args: argparse.Namespace, speaker_name: str | None, images: list[str]) -> int:
    name = companion.character.name
    count = await companion.history.count(args.conversation)
    print(f"Talking to {name}. Empty line or Ctrl+D to quit; Ctrl+C stops a reply.")
    if count == 0 and companion.character.first_mes:
        from companion.text.chunking import extract_emotions

        print(f"{name}: {extract_emotions(companion.greeting(speaker_name or companion.settings.owner_display_name(), args.conversation))[0]}")
    you = speaker_name or (args.speaker if args.speaker != "local" else companion.settings.owner_display_name())
    while (line := await _ask(you)) is not None:
        sys.stdout.write(f"{name}: ")
        sys.stdout.flush()
        task = asyncio.ensure_future(
            companion.respond(
                line,
                conversation_id=args.conversation,
                speaker_id=args.speaker,
                speaker_name=speaker_name,
                images=images,
                on_token=lambda t: (sys.stdout.write(t), sys.stdout.flush()) and None,
            )
        )
        images = []
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            # Ctrl+C while a reply streams stops that reply, not the chat
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            companion.interrupt(args.conversation)
            result = await task
        print()
        if result.error:
            print(f"error: {result.error}", file=sys.stderr)
    return 0


# -- a group of characters ([[characters]]): each line says who speaks -----------------------------


async def _group_chat(settings: Settings, args: argparse.Namespace, images: list[str]) -> int:
    from companion.app import build_group

    cast = build_group(settings)
    speaker_name = args.name or (args.speaker if args.speaker != "local" else None)
    await cast.start()
    try:
        if args.message is not None:
            return await _group_message(cast, args, speaker_name, images)
        return await _group_interactive(cast, args, speaker_name)
    finally:
        pending = any(c.memory is not None and c.memory.pending() for c in cast.companions.values())
        if pending and not args.json:
            print("(saving memories…)", file=sys.stderr)
        await cast.close(memory_grace=120.0)


def _line_json(line: Line, args: argparse.Namespace) -> str:
    result = line.result
    return json.dumps(
        {
            "character": line.character,
            "reply": result.reply,
            "emotions": result.emotions,
            "sentences": [{"text": s.text, "speech": s.speech, "emotions": list(s.emotions)} for s in result.sentences],
            "timings": result.timings_ms,
            "turn_id": result.turn_id,
            "interrupted": result.interrupted,
            "error": result.error,
            "speaker": args.speaker,
            "conversation": args.conversation,
        },
        ensure_ascii=False,
    )


def _line_printer(args: argparse.Namespace) -> Any:
    def show(line: Line) -> None:
        if args.json:
            print(_line_json(line, args), flush=True)  # one object per character, as each finishes
        else:
            print(f"{line.character}: {line.text}", flush=True)
            if line.result.error:
                print(f"error: {line.result.error}", file=sys.stderr)

    return show


async def _group_message(cast: Cast, args: argparse.Namespace, speaker_name: str | None, images: list[str]) -> int:
    if args.platform in ("twitch", "youtube"):
        return await _group_stream_message(cast, args, speaker_name)
    lines = await cast.respond(
        args.message, conversation_id=args.conversation, speaker_id=args.speaker, speaker_name=speaker_name,
        platform="cli", images=images, on_line=_line_printer(args),
    )
    return EXIT_FAILURE if any(line.result.error for line in lines) else 0


async def _group_interactive(cast: Cast, args: argparse.Namespace, speaker_name: str | None) -> int:
    host = cast.host
    print(f"Talking to {' and '.join(cast.names)}. Empty line or Ctrl+D to quit; Ctrl+C stops them.")
    you = speaker_name or (args.speaker if args.speaker != "local" else host.settings.owner_display_name())
    while (text := await _ask(you)) is not None:
        task = asyncio.ensure_future(
            cast.respond(text, conversation_id=args.conversation, speaker_id=args.speaker, speaker_name=speaker_name, on_line=_line_printer(args))
        )
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            cast.interrupt(args.conversation)  # Ctrl+C stops whoever speaks and the lines still to come
            await task
    return 0


async def _group_stream_message(cast: Cast, args: argparse.Namespace, speaker_name: str | None) -> int:
    """One chat message through the path a Twitch/YouTube message takes, answered by the group."""
    from companion.stream.chat import StreamChat

    chat = StreamChat(cast.host, cast.host.settings, cast=cast)
    candidate = _stream_candidate(chat, args, speaker_name)
    if candidate is None:
        return 0
    chat.on_line = _line_printer(args)
    result = await chat.answer(candidate)
    return EXIT_FAILURE if result.error else 0
